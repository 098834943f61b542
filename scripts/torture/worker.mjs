// One torture worker: loops over random operations against the shared cache until killed, checking every
// path a call returns right away (before any eviction may touch it), and reporting one JSON line per
// operation on stdout. Started by supervisor.mjs with the path of its config file.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { materializeBaseline, pruneBaselines } from "../../packages/baseline/dist/index.js";
import {
  EVICTION_CLAIM,
  STAGE_COMPLETE_SENTINEL,
  StageCache,
} from "../../packages/stage-cache/dist/index.js";
import { manifestOf } from "./trees.mjs";

const MARKERS = [STAGE_COMPLETE_SENTINEL, EVICTION_CLAIM];
const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const pick = (list) => list[Math.floor(Math.random() * list.length)];
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
  async prune() {
    const removed = await pruneBaselines(config.cacheRoot, { olderThanMs: config.pruneAgeMs });
    return { removed: removed.length };
  },
};

// Weights: mostly stages and baselines, with sweeps and prunes often enough that eviction never rests.
const mix = [
  "stage",
  "stage",
  "stage",
  "stage",
  "baseline",
  "baseline",
  "baseline",
  "scratch",
  "sweep",
  "prune",
];

for (;;) {
  const kind = pick(mix);
  try {
    const detail = await operations[kind]();
    emit({ kind, ok: true, ...detail });
  } catch (error) {
    emit({ kind, ok: false, message: String(error?.stack ?? error) });
  }
}
