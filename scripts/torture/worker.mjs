// One torture worker: loops over seeded random operations against the shared cache until killed, checking
// every path a call returns right away (before any eviction may touch it), and reporting one JSON line per
// operation on stdout. Started by supervisor.mjs:
//
//   node worker.mjs <config.json> <role> <seed>
//
// Roles: `root` does everything; `nobody` (run as that user) shares the stage cache with root; `scratch-owner`
// holds one scratch copy for its whole life and checks, again and again, that it is still there and whole,
// while other workers open the cache and remove stale scratch copies.
import { existsSync, readFileSync } from "node:fs";
import { utimes } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { cleanBaselines, materializeBaseline, pruneBaselines } from "../../packages/baseline/dist/index.js";
import {
  EVICTION_CLAIM,
  fingerprintTree,
  STAGE_COMPLETE_SENTINEL,
  StageCache,
} from "../../packages/stage-cache/dist/index.js";
import { holdsSecret, manifestOf } from "./trees.mjs";

const MARKERS = [STAGE_COMPLETE_SENTINEL, EVICTION_CLAIM];
const [configPath, role, seedText] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configPath, "utf8"));

// A small seeded generator (mulberry32), so a failing run can be replayed with its seed.
let state = Number(seedText) >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (list) => list[Math.floor(random() * list.length)];
const emit = (record) => process.stdout.write(`${JSON.stringify(record)}\n`);

const cache = await StageCache.open({
  root: config.stageRoot,
  maxBytes: config.maxBytes,
  minAgeMs: config.minAgeMs,
  staleAfterMs: config.staleAfterMs,
  onWarning: (message, path) => emit({ warning: `${message} (${path})` }),
});

async function expectTree(kind, dir, expected, ignore) {
  const actual = await manifestOf(dir, ignore);
  if (actual !== expected) emit({ violation: `${kind}: ${dir} does not match its source when returned` });
}

const operations = {
  // Many workers on few fingerprints: constant collisions, with evictions in between.
  async stage() {
    const source = pick(config.sources);
    const dir = await cache.stage(source.dir, source.fingerprint);
    // An evictor may hold the sentinel under its claim name for an instant before giving the entry back.
    if (!MARKERS.some((name) => existsSync(join(dir, name))))
      emit({ violation: `stage: ${dir} has no sentinel` });
    await expectTree("stage", dir, source.manifest, MARKERS);
    return {};
  },
  // The attacked source: a fresh key each time, so every call copies while the attacker swaps entries for
  // symlinks to the secret. The copy and the fingerprint must each be one of the legitimate trees.
  // An entry that vanishes between listing and reading may fail the call with ENOENT ("the source changed
  // during the stage"): a refusal, not a violation. Anything else it returns must be legitimate.
  async attacked() {
    const refused = (error) => {
      if (error?.code !== "ENOENT") throw error;
      return undefined;
    };
    const digest = await fingerprintTree(config.attacked.dir).catch(refused);
    if (digest !== undefined && !config.attacked.digests.includes(digest))
      emit({ violation: `attacked: fingerprintTree gave ${digest}, the digest of no legitimate tree` });
    const key = `swap-${process.pid}-${Math.floor(random() * 1e9)}`;
    const dir = await cache.stage(config.attacked.dir, key).catch(refused);
    if (dir === undefined) return { refused: 1 };
    if (await holdsSecret(dir)) emit({ violation: `attacked: the secret was copied into ${dir}` });
    const manifest = await manifestOf(dir, MARKERS);
    if (!config.attacked.legitimate.includes(manifest))
      emit({ violation: `attacked: ${dir} is not one of the legitimate trees` });
    return { refused: digest === undefined ? 1 : 0 };
  },
  // A scratch copy lives for its cache object only: open, stage, check, close.
  async scratch() {
    const source = pick(config.sources);
    const scratchCache = await StageCache.open({ root: config.stageRoot, staleAfterMs: config.staleAfterMs });
    try {
      const dir = await scratchCache.stage(source.dir);
      await expectTree("scratch", dir, source.manifest, MARKERS);
    } finally {
      await scratchCache.close();
    }
    return {};
  },
  async baseline() {
    const commit = pick(config.commits);
    const result = await materializeBaseline({
      path: config.repo,
      base: commit.sha,
      cacheRoot: config.cacheRoot,
    });
    if (result.commit !== commit.sha)
      emit({ violation: `baseline: asked for ${commit.sha}, got ${result.commit}` });
    await expectTree("baseline", result.dir, commit.manifest, [".git"]);
    return { cache: result.cache };
  },
  async sweep() {
    const { removed } = await cache.sweep();
    return { removed: removed.length };
  },
  // Several workers prune at once, with ages short enough that slots in use by others are candidates.
  async prune() {
    const report = await pruneBaselines(config.cacheRoot, {
      olderThanMs: config.pruneAgeMs,
      minAgeMs: config.pruneAgeMs,
      staleAfterMs: config.staleAfterMs,
    });
    return { removed: report.removed.length };
  },
  async clean() {
    const report = await cleanBaselines(config.cacheRoot, { staleAfterMs: config.staleAfterMs });
    return { removed: report.removed.length };
  },
};

// Weights: mostly stages and baselines, with sweeps and prunes often enough that eviction never rests.
const mixes = {
  root: [
    "stage",
    "stage",
    "stage",
    "attacked",
    "baseline",
    "baseline",
    "baseline",
    "scratch",
    "sweep",
    "prune",
    "clean",
  ],
  // Another user shares the stage cache (its slots, staging, trash and scratch directories).
  nobody: ["stage", "stage", "stage", "attacked", "scratch", "sweep"],
};

if (role === "scratch-owner") await ownScratchForever();
const mix = mixes[role];
for (;;) {
  const kind = pick(mix);
  try {
    const detail = await operations[kind]();
    emit({ kind, ok: true, ...detail });
  } catch (error) {
    emit({ kind, ok: false, message: String(error?.stack ?? error) });
  }
}

/**
 * Holds one scratch copy for as long as the process lives. Its directory is made to look a day old after
 * every hand-out, so that the other workers' `open()` would take it for debris if it did not check that its
 * owner is alive. Every hand-out must return the same, whole copy.
 */
async function ownScratchForever() {
  const source = config.sources[0];
  const owner = await StageCache.open({ root: config.stageRoot, staleAfterMs: config.staleAfterMs });
  const first = await owner.stage(source.dir);
  const dayAgo = new Date(Date.now() - 86_400_000);
  for (;;) {
    const dir = await owner.stage(source.dir);
    if (dir !== first) emit({ violation: `scratch-owner: got ${dir}, then ${first}: the copy was replaced` });
    await expectTree("scratch-owner", dir, source.manifest, MARKERS).catch((error) =>
      emit({ violation: `scratch-owner: ${dir} vanished or broke under its live owner: ${error.code}` }),
    );
    await utimes(dir, dayAgo, dayAgo).catch(() => {});
    emit({ kind: "held scratch", ok: true });
    await sleep(50 + random() * 100);
  }
}
