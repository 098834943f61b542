// A child process that hits an entry as whatever user it was started as (the tests start it as nobody).
// Usage: node touch-worker.mjs '<json: {root, slot, sentinel, claim, times}>'
// Calls EntryStore.touch(slot) `times` times and prints one JSON line: {"results":[...],"warnings":[...],
// "leakedFds":n} (descriptors still open on the sentinel afterwards; Linux), or {"error":{name, code, path, message}}
// when a touch throws.
import "@cas-stage/test-support/stryker-child";
import { readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { EntryStore } from "../../dist/index.js";

const { root, slot, sentinel, claim, times } = JSON.parse(process.argv[2]);
const warnings = [];
const store = new EntryStore({
  stagingDir: join(root, ".staging"),
  trashDir: join(root, ".trash"),
  sentinel,
  claim,
  onWarning: (message, path) => warnings.push({ message, path }),
});
const results = [];
/** Descriptors this process holds on the entry's sentinel. */
const openOnSentinel = () =>
  readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === join(slot, sentinel);
    } catch {
      return false;
    }
  }).length;
try {
  for (let i = 0; i < times; i++) results.push(await store.touch(slot));
  process.stdout.write(`${JSON.stringify({ results, warnings, leakedFds: openOnSentinel() })}\n`);
} catch (error) {
  const { name, code, path, message } = error;
  process.stdout.write(`${JSON.stringify({ results, warnings, error: { name, code, path, message } })}\n`);
}
