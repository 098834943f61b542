// One pruner in a real process: `prune-worker.mjs <cacheRoot> <options as JSON>` runs pruneBaselines once
// and prints its result as one JSON line on stdout; a failure goes to stderr with exit code 1.
import { pruneBaselines } from "../../dist/index.js";

const [cacheRoot, options = "{}"] = process.argv.slice(2);
try {
  const result = await pruneBaselines(cacheRoot, JSON.parse(options));
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (error) {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exitCode = 1;
}
