// A child process that sweeps stale temps once. Usage: node sweep-worker.mjs <parent>
// Prints one JSON line: {"removed":[paths]} or {"error":{code, message}}.
import "@cas-stage/test-support/stryker-child";
import { sweepStaleTemps } from "../../dist/index.js";

try {
  const removed = await sweepStaleTemps(process.argv[2], { olderThanMs: 0 });
  process.stdout.write(`${JSON.stringify({ removed })}\n`);
} catch (error) {
  process.stdout.write(
    `${JSON.stringify({ error: { code: error.code, message: String(error.message) } })}\n`,
  );
}
