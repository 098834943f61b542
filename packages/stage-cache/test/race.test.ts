import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { STAGE_COMPLETE_SENTINEL, StageCache } from "../src/index.js";
import { readTree, tempDir } from "./fixtures.js";
import { raceSources, startWorker } from "./processes.js";

const WORKERS = 8;
const MIN_AGE_MS = 100;

/**
 * Every slot under root holds exactly its source's tree, and either its sentinel or, when an evictor was
 * killed after claiming it, the claim (which never looks complete, and which the next stage clears).
 */
function checkEveryEntry(root: string, sources: Record<string, string>) {
  for (const fanOut of readdirSync(root)) {
    if (fanOut.startsWith(".")) continue;
    for (const fp of readdirSync(join(root, fanOut))) {
      const slot = join(root, fanOut, fp);
      const marked = [STAGE_COMPLETE_SENTINEL, ".cas-stage-evicting"].some((name) =>
        existsSync(join(slot, name)),
      );
      expect(marked, `${slot} has neither its sentinel nor an eviction claim`).toBe(true);
      expect(readTree(slot, { skipSentinel: true })).toEqual(readTree(sources[fp] as string));
    }
  }
}

describe("many processes", () => {
  it("all succeed and all get a complete copy while eviction runs concurrently", async () => {
    const root = join(tempDir("race-root"), "cache");
    const { sources, expected } = raceSources(10);
    const job = { root, sources, expected, maxBytes: 1, minAgeMs: MIN_AGE_MS, pauseMs: 80 };
    const workers = [
      ...Array.from({ length: WORKERS }, () => startWorker({ ...job, rounds: 40, mode: "stage" })),
      startWorker({ ...job, rounds: 400, mode: "sweep" }),
    ];
    const reports = await Promise.all(workers.map((worker) => worker.done));
    const stagers = reports.slice(0, WORKERS);
    const calls = stagers.reduce((sum, report) => sum + (report?.calls ?? 0), 0);
    expect(calls).toBe(WORKERS * 40);
    // A path may legitimately vanish once it has gone unused for minAgeMs; a worker slower than that to
    // read its tree (a loaded machine) is not a failure of the cache. Anything else is.
    const failures = stagers.flatMap((report) => report?.failures ?? []);
    expect(failures.filter((failure) => failure.sinceReturnMs < MIN_AGE_MS)).toEqual([]);
    // Eviction did happen meanwhile, or the test proves nothing.
    const evicted = reports.reduce((sum, report) => sum + (report?.evicted ?? 0), 0);
    expect(evicted).toBeGreaterThan(0);
    checkEveryEntry(root, sources);
  });

  it("leaves, after SIGKILL at random moments, only complete entries, and the next stage repairs by itself", async () => {
    const root = join(tempDir("crash-root"), "cache");
    const { sources, expected } = raceSources(3, 4 * 1024 * 1024);
    const job = {
      root,
      sources,
      expected,
      maxBytes: 1,
      minAgeMs: 0,
      pauseMs: 5,
      rounds: 1000,
      mode: "stage",
    };
    for (let wave = 0; wave < 3; wave++) {
      const workers = Array.from({ length: WORKERS }, () => startWorker(job));
      await Promise.all(
        workers.map(async ({ child }) => {
          await sleep(150 + Math.random() * 600);
          child.kill("SIGKILL");
        }),
      );
      const reports = await Promise.all(workers.map((worker) => worker.done));
      // minAgeMs 0 lets a peer evict a returned entry at once, so only the stage calls themselves are judged.
      for (const report of reports) {
        expect(report?.failures.filter((failure) => failure.problem.startsWith("stage threw")) ?? []).toEqual(
          [],
        );
      }
      checkEveryEntry(root, sources);
    }
    const cache = await StageCache.open({ root, minAgeMs: 60_000 });
    for (const [fp, source] of Object.entries(sources)) {
      const path = await cache.stage(source, fp);
      expect(readTree(path, { skipSentinel: true })).toEqual(readTree(source));
    }
    await cache.close();
  });
});
