// A child process of race.test.ts: stages colliding fingerprints in a loop (mode "stage") or sweeps (mode
// "sweep"), and reports every completed call as one JSON line on stdout, written synchronously, so a
// SIGKILL loses at most the call in progress. Imports the built package, as a real user would.
//
//   node stage-worker.mjs <job.json>
//
// job: { root, sources: { [fp]: dir }, expected: { [fp]: { [rel]: sha256 } }, rounds, maxBytes, minAgeMs,
//        pauseMs, mode: "stage" | "sweep", seed }
//
// Lines (times are Date.now() of this machine, comparable across processes):
//   { kind: "ready", pid, seed }
//   { kind: "stage", fp, startedAt, returnedAt, checkedAt, path, problem?, code? }   one per completed stage
//   { kind: "stage", fp, startedAt, failedAt, error: { code, message } }             a stage that threw
//   { kind: "trash", slot, at }     an eviction by this process is about to move `slot` to the trash
//   { kind: "sweep", removed, at }  one per completed sweep
//   { kind: "done" }
import "@cas-stage/test-support/stryker-child";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { mulberry32 } from "@cas-stage/test-support/mulberry32";
import { TEST_HOOKS } from "../dist/cache.js";
import { StageCache } from "../dist/index.js";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const report = (line) => writeSync(1, `${JSON.stringify(line)}\n`);

/** Seeded by the job, so a run can be replayed (see the test's CAS_SEED). */
const random = mulberry32(job.seed);

const cache = await StageCache.open({
  root: job.root,
  maxBytes: job.maxBytes,
  minAgeMs: job.minAgeMs,
  onWarning: () => {},
  // Reported before the rename into the trash, so that no SIGKILL can hide an eviction that happened.
  [TEST_HOOKS]: { beforeTrash: (slot) => report({ kind: "trash", slot, at: Date.now() }) },
});
const fingerprints = Object.keys(job.sources);
report({ kind: "ready", pid: process.pid, seed: job.seed });

// An evictor may rename the sentinel of an entry we hold for an instant (its claim), then, seeing our use,
// rename it back: either name marks the entry as whole. Neither is read, since it may move under us.
const MARKERS = new Set([".cas-stage-complete", ".cas-stage-evicting"]);

/** Every file of the tree at `path` (markers aside) must be there with the expected content. */
function check(path, expected) {
  const seen = {};
  let marked = false;
  const walk = (rel) => {
    for (const entry of readdirSync(join(path, rel), { withFileTypes: true })) {
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      if (!rel && MARKERS.has(entry.name)) marked = true;
      else if (entry.isDirectory()) walk(childRel);
      else
        seen[childRel] = createHash("sha256")
          .update(readFileSync(join(path, childRel)))
          .digest("hex");
    }
  };
  walk("");
  if (!marked) return "no sentinel";
  const want = Object.keys(expected).sort();
  const got = Object.keys(seen).sort();
  if (JSON.stringify(want) !== JSON.stringify(got)) return `files differ: ${got.length} of ${want.length}`;
  for (const rel of want) if (seen[rel] !== expected[rel]) return `content differs: ${rel}`;
  return undefined;
}

for (let round = 0; round < job.rounds; round++) {
  if (job.mode === "sweep") {
    const { removed } = await cache.sweep();
    report({ kind: "sweep", removed, at: Date.now() });
    await sleep(random() * 5);
    continue;
  }
  const fp = fingerprints[Math.floor(random() * fingerprints.length)];
  const startedAt = Date.now();
  let path;
  try {
    path = await cache.stage(job.sources[fp], fp);
  } catch (error) {
    report({
      kind: "stage",
      fp,
      startedAt,
      failedAt: Date.now(),
      error: { code: error?.code, message: error?.message },
    });
    continue;
  }
  const returnedAt = Date.now();
  let problem;
  let code;
  try {
    problem = check(path, job.expected[fp]);
  } catch (error) {
    code = error?.code;
    problem = `read failed: ${code} ${error?.message}`;
  }
  report({ kind: "stage", fp, startedAt, returnedAt, checkedAt: Date.now(), path, problem, code });
  // Pauses let entries go unused for longer than minAgeMs, so eviction really happens meanwhile.
  await sleep(random() * job.pauseMs);
}
await cache.close();
report({ kind: "done" });
