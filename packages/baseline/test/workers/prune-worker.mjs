// One pruner in a real process: `prune-worker.mjs <cacheRoot> <options as JSON> [prune|clean]` runs
// pruneBaselines (or cleanBaselines) once and prints its result as one JSON line on stdout; a failure goes
// to stderr with exit code 1.
import * as baseline from "../../dist/index.js";

const [cacheRoot, options = "{}", command = "prune"] = process.argv.slice(2);
try {
  const run = command === "clean" ? baseline.cleanBaselines : baseline.pruneBaselines;
  const result = await run(cacheRoot, JSON.parse(options));
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (error) {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exitCode = 1;
}
