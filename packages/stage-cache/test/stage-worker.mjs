// A child process of race.test.ts: stages colliding fingerprints in a loop and checks every returned tree
// right away. Imports the built package, as a real user would.
//
//   node stage-worker.mjs <job.json>
//
// job: { root, sources: { [fp]: dir }, expected: { [fp]: { [rel]: sha256 } }, rounds, maxBytes, minAgeMs,
//        mode: "stage" | "sweep" }
// Prints one JSON line: { calls, failures: [{ fp, problem, sinceReturnMs }], evicted }.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { StageCache } from "../dist/index.js";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const cache = await StageCache.open({
  root: job.root,
  maxBytes: job.maxBytes,
  minAgeMs: job.minAgeMs,
  onWarning: () => {},
});
const fingerprints = Object.keys(job.sources);
const failures = [];
let calls = 0;
let evicted = 0;

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
    evicted += (await cache.sweep()).removed.length;
    await sleep(Math.random() * 5);
    continue;
  }
  const fp = fingerprints[Math.floor(Math.random() * fingerprints.length)];
  calls++;
  let path;
  try {
    path = await cache.stage(job.sources[fp], fp);
  } catch (error) {
    failures.push({ fp, problem: `stage threw: ${error?.code} ${error?.message}`, sinceReturnMs: 0 });
    continue;
  }
  const returnedAt = performance.now();
  let problem;
  try {
    problem = check(path, job.expected[fp]);
  } catch (error) {
    problem = `read failed: ${error?.code}`;
  }
  if (problem) failures.push({ fp, problem, sinceReturnMs: performance.now() - returnedAt });
  // Pauses let entries go unused for longer than minAgeMs, so eviction really happens meanwhile.
  await sleep(Math.random() * job.pauseMs);
}
await cache.close();
process.stdout.write(`${JSON.stringify({ calls, failures, evicted })}\n`);
