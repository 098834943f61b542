// Real processes materializing and pruning the same commits at once, some SIGKILLed at chosen points of a
// build or an eviction and others at random moments; then a zero-age clean must leave zero debris and
// every slot whole. Replay a failure with CAS_TORTURE_SEED=<the printed seed>.
import { readdirSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { mulberry32 } from "@cas-stage/test-support/mulberry32";
import { afterEach, describe, expect, it } from "vitest";
import { cleanBaselines, listBaselines, materializeBaseline, verifyBaselines } from "../src/index.js";
import { stagingDir, trashDir } from "../src/layout.js";
import { cacheNames, gitRepo, makeTempDir, removeTempDirs, setLastUse } from "./fixtures.js";
import { type CacheWorker, startCacheWorker } from "./processes.js";

afterEach(removeTempDirs);

const COMMITS = 10;
const FILES = 200;
/** Pruners never take a slot used within this; a returned path must stay whole at least this long. */
const MIN_AGE_MS = 500;

/** A repository of COMMITS commits, each replacing `d/` with FILES files tagged with the commit. */
function repoOfCommits() {
  const repo = gitRepo();
  const commits = [];
  for (let c = 0; c < COMMITS; c++) {
    const tag = `c${c}`;
    for (let i = 0; i < FILES; i++) repo.write(`d/f${i}`, `${tag}:${i}\n`.repeat(4));
    commits.push({ commit: repo.commit(tag), tag, files: FILES });
  }
  return { repo, commits };
}

/** Why a materialize report breaks the guarantee, or undefined. */
function violation(event: Record<string, unknown>): string | undefined {
  if (!["hit", "built", "adopted"].includes(event.cache as string)) return `cache: ${event.cache}`;
  const problem = event.problem as string | undefined;
  if (problem === undefined) return undefined;
  // A slot may vanish once unused for MIN_AGE_MS; never sooner, and never be torn or wrong.
  const age = (event.checkedAt as number) - (event.returnedAt as number);
  if (problem.startsWith("ENOENT") && age >= MIN_AGE_MS) return undefined;
  return `${event.dir} ${problem} ${age} ms after it was returned`;
}

describe("processes materializing and pruning one cache, SIGKILLed at any point", () => {
  it("never return a partial tree, and a zero-age clean leaves zero debris", {
    timeout: 180_000,
  }, async () => {
    const seed = Number(process.env.CAS_TORTURE_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const context = `seed ${seed} (replay with CAS_TORTURE_SEED=${seed})`;
    const { repo, commits } = repoOfCommits();
    const cacheRoot = makeTempDir("cache");
    const config = { repo: repo.dir, commits, minAgeMs: MIN_AGE_MS };

    // Phase 1: crashes at chosen points. Four slots, unused for an hour, are the pruners' prey.
    for (const { commit } of commits.slice(0, 4)) {
      const { dir } = await materializeBaseline({ path: repo.dir, base: commit, cacheRoot });
      setLastUse(dir, new Date(Date.now() - 3_600_000));
    }
    for (const stopAt of ["beforeTrash", "afterTrash", "beforeClaim"]) {
      const victim = startCacheWorker("prune-victim", cacheRoot, { ...config, seed, stopAt });
      await victim.reached((event) => event.reached === stopAt);
      victim.kill();
      await victim.exited;
    }
    const builder = startCacheWorker("build-victim", cacheRoot, {
      ...config,
      seed,
      commit: commits[4]?.commit,
    });
    await builder.reached((event) => event.reached === "halfway");
    builder.kill();
    await builder.exited;
    const left = await listBaselines(cacheRoot, { staleAfterMs: 0 });
    expect(left.debris.map((entry) => entry.kind).sort()).toEqual(["claim", "temp", "trash"]);

    // Phase 2: materializers and pruners at once, plus processes killed at random moments.
    const random = mulberry32(seed);
    const steady: CacheWorker[] = [
      ...[1, 2, 3].map((k) =>
        startCacheWorker("materialize", cacheRoot, { ...config, seed: seed + k, calls: 25 }),
      ),
      ...[4, 5].map((k) => startCacheWorker("prune", cacheRoot, { ...config, seed: seed + k, calls: 100 })),
      startCacheWorker("verify", cacheRoot, { ...config, seed: seed + 6, calls: 15 }),
    ];
    const killed: CacheWorker[] = [];
    for (let k = 0; k < 8; k++) {
      const role = random() < 0.5 ? "materialize" : "prune";
      const worker = startCacheWorker(role, cacheRoot, { ...config, seed: seed + 10 + k, calls: 1000 });
      await sleep(50 + Math.floor(random() * 450));
      worker.kill();
      killed.push(worker);
    }
    const finished = await Promise.all(steady.map((worker) => worker.exited));
    await Promise.all(killed.map((worker) => worker.exited));
    for (const outcome of finished)
      expect(outcome, `${context}: ${outcome.stderr}`).toMatchObject({ code: 0 });

    const reports = [...steady, ...killed].flatMap((worker) => worker.events);
    const materialized = reports.filter((event) => event.role === "materialize");
    expect(materialized.length, context).toBeGreaterThanOrEqual(75);
    expect(materialized.map(violation).filter(Boolean), context).toEqual([]);
    // A slot evicted while being verified is gone, never bad.
    const verifications = reports.filter((event) => event.role === "verify");
    expect(verifications.length, context).toBe(15);
    expect(
      verifications.flatMap((event) => event.bad as unknown[]),
      context,
    ).toEqual([]);
    const evicted = reports
      .filter((event) => event.role === "prune")
      .reduce((n, e) => n + (e.removed as number), 0);
    expect(evicted, `${context}: the pruners removed nothing, so nothing was tested`).toBeGreaterThan(0);

    // Phase 3: with nothing running, a zero-age clean removes every piece of debris.
    await cleanBaselines(cacheRoot, { staleAfterMs: 0 });
    const listing = await listBaselines(cacheRoot, { staleAfterMs: 0 });
    expect(listing.debris, context).toEqual([]);
    expect(readdirSync(stagingDir(cacheRoot))).toEqual([]);
    expect(readdirSync(trashDir(cacheRoot))).toEqual([]);
    const known = new Set(commits.map((c) => c.commit));
    expect(cacheNames(cacheRoot).filter((name) => !known.has(name))).toEqual([]);
    const verified = await verifyBaselines(cacheRoot, { repo: repo.dir });
    expect(verified.slots.length).toBe(listing.slots.length);
    expect(
      verified.slots.filter((slot) => slot.status !== "ok"),
      context,
    ).toEqual([]);
  });
});
