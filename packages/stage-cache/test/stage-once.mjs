// A child process that opens a cache and makes one call, for tests that need another process, another user
// or a traced process (strace). Imports the built package, as a real user would.
//
//   node stage-once.mjs <job as JSON>
//
// job: { root, source, fingerprint?, umask?, options?: StageCacheOptions, sweep?: boolean }
// Sets the umask first, opens the cache, then stages `source` (under `fingerprint`, or as a scratch copy),
// or sweeps when `sweep` is set, and prints one JSON line:
//   { path, readable: true | "<problem>", sentinelMtimeMs?, warnings }   after a stage
//   { sweep: SweepResult, warnings }                                     after a sweep
//   { error: { name, code, path, message }, warnings }                   when the call threw
import "@cas-stage/test-support/stryker-child";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { StageCache } from "../dist/index.js";

const job = JSON.parse(process.argv[2]);
if (job.umask !== undefined) process.umask(job.umask);
const warnings = [];
const out = { warnings };

/** Reads every file under `dir`: true when this user can, else what failed. */
function readAll(dir) {
  try {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        const inner = readAll(path);
        if (inner !== true) return inner;
      } else readFileSync(path);
    }
    return true;
  } catch (error) {
    return `${error.code} ${error.message}`;
  }
}

let cache;
try {
  cache = await StageCache.open({
    root: job.root,
    ...job.options,
    onWarning: (message, path) => warnings.push({ message, path }),
  });
  if (job.sweep) {
    out.sweep = await cache.sweep();
  } else {
    out.path = await cache.stage(job.source, job.fingerprint);
    out.readable = readAll(out.path);
    if (job.fingerprint !== undefined)
      out.sentinelMtimeMs = statSync(join(out.path, ".cas-stage-complete")).mtimeMs;
  }
} catch (error) {
  out.error = { name: error?.name, code: error?.code, path: error?.path, message: error?.message };
} finally {
  await cache?.close();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
