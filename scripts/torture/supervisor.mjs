#!/usr/bin/env node
// The torture run: K worker processes share one cache root and hammer it with colliding stages,
// baseline materializations, scratch copies, sweeps and prunes, while this supervisor SIGKILLs random
// workers at random moments and starts new ones. It checks, while it runs and at the end, that no slot is
// ever seen partially written, that every returned path was complete, that no call failed except by being
// killed, and that after a final sweep with zero ages no debris remains. Exit 1 on any violation.
//
//   npm run torture -- [--seconds 60] [--workers 8] [--dir DIR] [--keep]
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { pruneBaselines } from "../../packages/baseline/dist/index.js";
import { sweepStaleTemps } from "../../packages/cas/dist/index.js";
import {
  EVICTION_CLAIM,
  STAGE_COMPLETE_SENTINEL,
  StageCache,
} from "../../packages/stage-cache/dist/index.js";
import { manifestOf, manifestOfCommit, writeRepository, writeSourceTree } from "./trees.mjs";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "60" },
    workers: { type: "string", default: "8" },
    dir: { type: "string", default: tmpdir() },
    keep: { type: "boolean", default: false },
  },
});
const seconds = Number(values.seconds);
const workerCount = Number(values.workers);
const WORKER = fileURLToPath(new URL("worker.mjs", import.meta.url));

const work = await mkdtemp(join(values.dir, "cas-torture-"));
const cacheRoot = join(work, "cache");
const stageRoot = join(cacheRoot, "stage");
await mkdir(cacheRoot, { recursive: true });

// Two dozen sources on few fan-out dirs, so collisions and evictions are constant.
const sources = [];
for (let i = 0; i < 24; i++) {
  const dir = join(work, "sources", `s${i}`);
  await writeSourceTree(dir, `source${i}`, 30 + i * 3);
  const fingerprint = `${createHash("sha256")
    .update(`source${i}`)
    .digest("hex")
    .slice(0, 3 + (i % 2))}-${i}`;
  sources.push({ dir, fingerprint, manifest: await manifestOf(dir) });
}
const repo = join(work, "repo");
const commits = (await writeRepository(repo, 40, 30)).map((sha) => ({
  sha,
  manifest: manifestOfCommit(repo, sha),
}));
const manifestByCommit = new Map(commits.map((c) => [c.sha, c.manifest]));
const manifestByFingerprint = new Map(sources.map((s) => [s.fingerprint, s.manifest]));

const config = {
  stageRoot,
  cacheRoot,
  sources,
  repo,
  commits,
  maxBytes: 64 * 1024, // about one entry: every miss evicts
  minAgeMs: 2000, // a returned path is safe from eviction for this long: far longer than its check takes
  staleAfterMs: 60 * 60 * 1000, // workers never sweep each other's live temps
  pruneAgeMs: 2000, // short, so baselines are pruned and rebuilt (and raced for) all the time
};
const configPath = join(work, "config.json");
await writeFile(configPath, JSON.stringify(config));

const stats = {
  operations: {},
  removed: {},
  failed: {},
  baselineCache: {},
  kills: 0,
  started: 0,
  violations: [],
  warnings: 0,
  scans: 0,
};
const count = (table, key) => {
  table[key] = (table[key] ?? 0) + 1;
};

const live = new Set();
let stopping = false;

function startWorker() {
  const child = spawn(process.execPath, [WORKER, configPath], { stdio: ["ignore", "pipe", "pipe"] });
  stats.started++;
  live.add(child);
  let buffered = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => {
    buffered += chunk;
    let newline = buffered.indexOf("\n");
    while (newline >= 0) {
      record(JSON.parse(buffered.slice(0, newline)));
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf("\n");
    }
  });
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  child.on("exit", (code, signal) => {
    live.delete(child);
    if (signal !== "SIGKILL")
      stats.violations.push(`worker ${child.pid} exited by itself (${code ?? signal}): ${stderr}`);
    if (!stopping) startWorker();
  });
  return child;
}

function record(line) {
  if (line.violation) stats.violations.push(line.violation);
  else if (line.warning) stats.warnings++;
  else if (line.ok) {
    count(stats.operations, line.kind);
    if (line.cache) count(stats.baselineCache, line.cache);
    if (line.removed) stats.removed[line.kind] = (stats.removed[line.kind] ?? 0) + line.removed;
  } else {
    count(stats.failed, line.kind);
    stats.violations.push(`${line.kind} failed without being killed: ${line.message}`);
  }
}

/** Reads a slot only when it is the same directory before and after, so a replaced slot is not judged. */
async function checkSlot(path, expected, ignore) {
  const before = await lstat(path).catch(() => undefined);
  if (!before?.isDirectory()) return;
  const actual = await manifestOf(path, ignore).catch(() => undefined);
  const after = await lstat(path).catch(() => undefined);
  if (!after || after.ino !== before.ino || actual === undefined) return;
  if (actual !== expected) stats.violations.push(`observed ${path} partially written or wrong`);
}

/** Looks at every slot that claims to be complete while the workers run. */
async function scanOnce() {
  stats.scans++;
  for (const fanOut of await readdir(stageRoot).catch(() => [])) {
    if (fanOut.startsWith(".")) continue;
    for (const name of await readdir(join(stageRoot, fanOut)).catch(() => [])) {
      const slot = join(stageRoot, fanOut, name);
      if (!existsSync(join(slot, STAGE_COMPLETE_SENTINEL))) continue;
      const expected = manifestByFingerprint.get(name);
      if (expected === undefined) stats.violations.push(`unexpected complete-looking entry ${slot}`);
      else await checkSlot(slot, expected, [STAGE_COMPLETE_SENTINEL, EVICTION_CLAIM]);
    }
  }
  for (const name of await readdir(join(cacheRoot, "baselines")).catch(() => [])) {
    const expected = manifestByCommit.get(name);
    if (expected !== undefined) await checkSlot(join(cacheRoot, "baselines", name), expected, [".git"]);
  }
}

const startedAt = Date.now();
const deadline = startedAt + seconds * 1000;
for (let i = 0; i < workerCount; i++) startWorker();

const scanner = (async () => {
  while (!stopping) {
    await scanOnce();
    await sleep(100);
  }
})();
while (Date.now() < deadline) {
  await sleep(150 + Math.random() * 900);
  const victims = [...live];
  const victim = victims[Math.floor(Math.random() * victims.length)];
  if (victim && Date.now() < deadline) {
    stats.kills++;
    victim.kill("SIGKILL");
  }
}
stopping = true;
await scanner;
const exits = [...live].map((child) => new Promise((resolve) => child.once("exit", resolve)));
for (const child of live) child.kill("SIGKILL");
await Promise.all(exits);

// Final cleanup with zero ages, as an operator would after a crash: then nothing but complete slots may remain.
const final = await StageCache.open({ root: stageRoot, staleAfterMs: 0, minAgeMs: 0 });
await final.sweep();
await final.close();
await pruneBaselines(cacheRoot, { olderThanMs: 0 });
await sweepStaleTemps(join(cacheRoot, "baselines"), { olderThanMs: 0 });

const debris = [];
for (const name of await readdir(stageRoot)) {
  const path = join(stageRoot, name);
  if (name.startsWith(".")) {
    for (const inner of await readdir(path)) debris.push(join(path, inner));
    continue;
  }
  for (const entry of await readdir(path)) {
    const slot = join(path, entry);
    const expected = manifestByFingerprint.get(entry);
    if (expected === undefined || !existsSync(join(slot, STAGE_COMPLETE_SENTINEL))) debris.push(slot);
    else if ((await manifestOf(slot, [STAGE_COMPLETE_SENTINEL])) !== expected)
      debris.push(`${slot} (incomplete)`);
  }
}
for (const name of await readdir(join(cacheRoot, "baselines")).catch(() => [])) {
  debris.push(join(cacheRoot, "baselines", name));
}

const elapsed = ((Date.now() - startedAt) / 1000).toFixed(1);
const totalOps = Object.values(stats.operations).reduce((a, b) => a + b, 0);
const lines = [
  `torture: ${elapsed} s, ${workerCount} workers at a time (${stats.started} started), cache in ${cacheRoot}`,
  `  operations completed: ${totalOps} (${Object.entries(stats.operations)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ")})`,
  `  baseline results: ${Object.entries(stats.baselineCache)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ")} (built = won the rename race, adopted = lost it and reused the winner's slot)`,
  `  removed while in use by others: ${stats.removed.sweep ?? 0} stage entries evicted by sweeps, ${stats.removed.prune ?? 0} baseline slots and temps pruned`,
  `  SIGKILLs: ${stats.kills} during the run, ${exits.length} at the end`,
  `  live scans of complete-looking slots: ${stats.scans}; warnings: ${stats.warnings}`,
  `  invariant violations: ${stats.violations.length} (must be 0)`,
  ...stats.violations.slice(0, 20).map((v) => `    - ${v.split("\n")[0]}`),
  `  debris after the final sweep: ${debris.length} (must be 0)`,
  ...debris.slice(0, 20).map((d) => `    - ${d}`),
];
console.log(lines.join("\n"));
if (!values.keep) await rm(work, { recursive: true, force: true });
process.exit(stats.violations.length === 0 && debris.length === 0 && totalOps > 0 ? 0 : 1);
