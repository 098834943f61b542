#!/usr/bin/env node
// The torture run: worker processes share one cache root and hammer it with colliding stages, baseline
// materializations, scratch copies, sweeps, concurrent prunes and cleans, while this supervisor SIGKILLs
// random workers at random moments and starts new ones. Around them:
// - an attacker swaps entries of one source for symlinks to a secret outside it, as fast as it can, while
//   workers stage and fingerprint that source;
// - one worker holds a scratch copy for the whole run, made to look a day old, while the others open the
//   cache (and remove stale scratch copies of dead processes);
// - when run as root, two of the workers run as the user `nobody`, sharing the stage cache (umask 000, as a
//   cache shared by several users needs).
// It checks, while it runs and at the end, that no slot is ever seen partially written, that every returned
// path was complete, that the secret never reached a stage, that no call failed except by being killed, and
// that after a final clean with zero ages no debris remains. Exit 1 on any violation.
//
//   npm run torture -- [--seconds 60] [--workers 8] [--dir DIR] [--seed N] [--keep]
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { cleanBaselines, listBaselines, pruneBaselines } from "../../packages/baseline/dist/index.js";
import {
  EVICTION_CLAIM,
  fingerprintTree,
  STAGE_COMPLETE_SENTINEL,
  StageCache,
} from "../../packages/stage-cache/dist/index.js";
import { CopyForOtherUsers } from "../../packages/test-support/src/copy-for-others.mjs";
import {
  manifestOf,
  manifestOfCommit,
  writeAttackedSource,
  writeRepository,
  writeSourceTree,
} from "./trees.mjs";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "60" },
    workers: { type: "string", default: "8" },
    dir: { type: "string", default: tmpdir() },
    seed: { type: "string" },
    keep: { type: "boolean", default: false },
  },
});
const seconds = Number(values.seconds);
const workerCount = Number(values.workers);
const seed = Number(values.seed ?? Math.floor(Math.random() * 2 ** 31));
const WORKER = fileURLToPath(new URL("worker.mjs", import.meta.url));
const ATTACKER = fileURLToPath(new URL("attacker.mjs", import.meta.url));

// A seeded generator for every choice the supervisor makes (kills, roles, worker seeds).
let state = seed >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

// Everything is shared with `nobody`: directories 0777 and files 0666, as a multi-user cache must be made.
process.umask(0);
const nobody = secondUser();
// nobody runs a copy of the worker and of the built packages it loads, in a temp dir every user can enter:
// the checkout may lie where only its owner can (a clone under `mktemp -d`), and is not opened up.
const forNobody = nobody ? new CopyForOtherUsers() : undefined;
process.on("exit", () => forNobody?.remove());
const NOBODY_WORKER = forNobody?.add(WORKER);

const work = await mkdtemp(join(values.dir, "cas-torture-"));
await chmod(work, 0o755);
const cacheRoot = join(work, "cache");
const stageRoot = join(cacheRoot, "stage");
await mkdir(cacheRoot, { recursive: true });

// Two dozen sources on few fan-out dirs, so collisions and evictions are constant; mixed-case keys too.
const sources = [];
for (let i = 0; i < 24; i++) {
  const dir = join(work, "sources", `s${i}`);
  await writeSourceTree(dir, `source${i}`, 30 + i * 3);
  const hex = createHash("sha256").update(`source${i}`).digest("hex");
  const fingerprint = `${i % 3 === 0 ? hex.slice(0, 3).toUpperCase() : hex.slice(0, 3 + (i % 2))}-${i}`;
  sources.push({ dir, fingerprint, manifest: await manifestOf(dir) });
}
const attacked = await writeAttackedSource(work);
const digests = [];
for (const manifest of attacked.legitimate) digests.push(await digestOfManifest(manifest));
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
  attacked: { dir: attacked.source, legitimate: attacked.legitimate, digests },
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
  refused: 0,
};
const count = (table, key) => {
  table[key] = (table[key] ?? 0) + 1;
};

const live = new Map();
let stopping = false;

/** Starts a worker of `role`; killable ones are replaced by one of the same role when they die. */
function startWorker(role) {
  const asNobody = role === "nobody";
  const script = asNobody ? NOBODY_WORKER : WORKER;
  const child = spawn(process.execPath, [script, configPath, role, String(Math.floor(random() * 2 ** 31))], {
    stdio: ["ignore", "pipe", "pipe"],
    ...(asNobody ? { uid: nobody.uid, gid: nobody.gid } : {}),
  });
  stats.started++;
  live.set(child, role);
  createInterface({ input: child.stdout }).on("line", (line) => record(JSON.parse(line)));
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  child.on("exit", (code, signal) => {
    live.delete(child);
    if (signal !== "SIGKILL")
      stats.violations.push(`${role} worker ${child.pid} exited by itself (${code ?? signal}): ${stderr}`);
    if (!stopping && role !== "scratch-owner") startWorker(role);
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
    if (line.refused) stats.refused += line.refused;
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
  const cache = await StageCache.open({ root: stageRoot, cleanOnOpen: false });
  const { entries } = await cache.list().catch(() => ({ entries: [] }));
  await cache.close();
  for (const entry of entries) {
    if (entry.fingerprint.startsWith("swap-")) continue; // judged by the worker that staged it
    const expected = manifestByFingerprint.get(entry.fingerprint);
    if (expected === undefined) stats.violations.push(`unexpected complete-looking entry ${entry.path}`);
    else await checkSlot(entry.path, expected, [STAGE_COMPLETE_SENTINEL, EVICTION_CLAIM]);
  }
  const { slots } = await listBaselines(cacheRoot).catch(() => ({ slots: [] }));
  for (const slot of slots) {
    const expected = manifestByCommit.get(slot.commit);
    if (expected === undefined) stats.violations.push(`unexpected baseline slot ${slot.path}`);
    else await checkSlot(slot.path, expected, [".git"]);
  }
}

const startedAt = Date.now();
const deadline = startedAt + seconds * 1000;
const attacker = spawn(process.execPath, [ATTACKER, work], { stdio: ["ignore", "pipe", "inherit"] });
await new Promise((resolve) => createInterface({ input: attacker.stdout }).once("line", resolve));
const roles = Array.from({ length: workerCount }, (_, i) =>
  nobody && i >= workerCount - 2 ? "nobody" : "root",
);
for (const role of roles) startWorker(role);
const owner = startWorker("scratch-owner");

const scanner = (async () => {
  while (!stopping) {
    await scanOnce();
    await sleep(100);
  }
})();
while (Date.now() < deadline) {
  await sleep(150 + random() * 900);
  const victims = [...live.keys()].filter((child) => child !== owner);
  const victim = victims[Math.floor(random() * victims.length)];
  if (victim && Date.now() < deadline) {
    stats.kills++;
    victim.kill("SIGKILL");
  }
}
stopping = true;
await scanner;
const exits = [...live.keys(), attacker].map(
  (child) => new Promise((resolve) => child.once("exit", resolve)),
);
const killedAtEnd = live.size;
for (const child of live.keys()) child.kill("SIGKILL");
attacker.kill("SIGKILL");
await Promise.all(exits);

// Final cleanup with zero ages, as an operator would after a crash: then nothing but complete, correct
// slots may remain, and no debris at all.
const final = await StageCache.open({ root: stageRoot, staleAfterMs: 0, minAgeMs: 0 });
await final.sweep();
await final.clean();
await final.close();
await pruneBaselines(cacheRoot, { olderThanMs: 0, minAgeMs: 0, staleAfterMs: 0 });
await cleanBaselines(cacheRoot, { staleAfterMs: 0 });

const debris = [];
const check = await StageCache.open({ root: stageRoot, cleanOnOpen: false });
const listing = await check.list();
await check.close();
for (const item of listing.debris) debris.push(`${item.kind} ${item.path}`);
for (const entry of listing.entries) {
  const expected = manifestByFingerprint.get(entry.fingerprint);
  if (entry.fingerprint.startsWith("swap-")) continue;
  if (expected === undefined || (await manifestOf(entry.path, [STAGE_COMPLETE_SENTINEL])) !== expected)
    debris.push(`${entry.path} (wrong content)`);
}
for (const name of [".staging", ".scratch", ".trash"]) {
  for (const inner of await readdir(join(stageRoot, name)).catch(() => []))
    debris.push(join(stageRoot, name, inner));
}
const baselines = await listBaselines(cacheRoot);
for (const item of baselines.debris) debris.push(`${item.kind} ${item.path}`);
for (const slot of baselines.slots) debris.push(`${slot.path} (not pruned at age 0)`);
for (const name of await readdir(join(cacheRoot, "baselines")).catch(() => [])) {
  if (name.startsWith(".")) {
    for (const inner of await readdir(join(cacheRoot, "baselines", name)))
      debris.push(join(cacheRoot, "baselines", name, inner));
  } else if (!existsSync(join(cacheRoot, "baselines", name, ".git")))
    debris.push(join(cacheRoot, "baselines", name));
}

const elapsed = ((Date.now() - startedAt) / 1000).toFixed(1);
const totalOps = Object.values(stats.operations).reduce((a, b) => a + b, 0);
const lines = [
  `torture: ${elapsed} s, seed ${seed} (replay with --seed ${seed}), ${workerCount} workers at a time` +
    ` (${stats.started} started${nobody ? ", 2 of them as nobody" : ", all as this user: not root, no second user"})` +
    `, cache in ${cacheRoot}`,
  `  operations completed: ${totalOps} (${Object.entries(stats.operations)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ")})`,
  `  baseline results: ${Object.entries(stats.baselineCache)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ")} (built = won the rename race, adopted = lost it and reused the winner's slot)`,
  `  removed while in use by others: ${stats.removed.sweep ?? 0} stage entries evicted by sweeps, ` +
    `${stats.removed.prune ?? 0} baseline slots pruned, ${stats.removed.clean ?? 0} debris cleaned`,
  `  attacked source: ${stats.operations.attacked ?? 0} stages and fingerprints under a symlink-swapping attacker` +
    ` (${stats.refused} refused with ENOENT as the source changed under them)`,
  `  long-lived scratch copy: handed out ${stats.operations["held scratch"] ?? 0} times, always the same and whole`,
  `  SIGKILLs: ${stats.kills} during the run, ${killedAtEnd} at the end`,
  `  live scans of complete-looking slots: ${stats.scans}; warnings: ${stats.warnings}`,
  `  invariant violations: ${stats.violations.length} (must be 0)`,
  ...stats.violations.slice(0, 20).map((v) => `    - ${v.split("\n")[0]}`),
  `  debris after the final clean: ${debris.length} (must be 0)`,
  ...debris.slice(0, 20).map((d) => `    - ${d}`),
];
console.log(lines.join("\n"));
if (!values.keep) await rm(work, { recursive: true, force: true });
const held = stats.operations["held scratch"] ?? 0;
const attackedStages = stats.operations.attacked ?? 0;
process.exit(
  stats.violations.length === 0 && debris.length === 0 && totalOps > 0 && held > 0 && attackedStages > 0
    ? 0
    : 1,
);

/** The user and group ids of `nobody` when this runs as root and that user exists; otherwise undefined. */
function secondUser() {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync("id", ["-u", "nobody"], { encoding: "utf8" }));
    const gid = Number(execFileSync("id", ["-g", "nobody"], { encoding: "utf8" }));
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

/** The `fingerprintTree` digest of a tree with this manifest, rebuilt from the attacked source's parts. */
async function digestOfManifest(manifest) {
  const dir = await mkdtemp(join(work, "digest-"));
  try {
    for (const line of manifest.split("\n")) {
      const rel = line.split(" ")[0];
      const from = join(attacked.source, rel);
      await mkdir(join(dir, rel, ".."), { recursive: true });
      await writeFile(join(dir, rel), await readFile(from));
      const mode = (await lstat(from)).mode & 0o777;
      await chmod(join(dir, rel), mode);
    }
    return await fingerprintTree(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
