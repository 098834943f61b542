// EntryStore across real processes: publishers, hitters, evictors (single, forced and LRU passes), a
// cleaner that repairs claims at once and deletes every trash it finds, and a scanner, all on three slots,
// released together through a ready-line barrier. Every path a call returned is read back whole at once by
// the process that got it; every complete-looking or claimed slot the scanner finds is read back whole.
import { Rng, seedFromEnv } from "@cas-stage/test-support/seed";
import { describe, expect, it } from "vitest";
import { makeCache, namesIn, treeProblem } from "./entries.js";
import { type EntryEvent, type EntryProcess, startEntryWorker } from "./entry-processes.js";

const SEED = seedFromEnv();
const NAMES = ["ab1", "ab2", "cd1"];
const ROLES: Array<{ kind: string; count: number; iterations: number; claimGraceMs?: number }> = [
  { kind: "publisher", count: 2, iterations: 150 },
  { kind: "hitter", count: 2, iterations: 300 },
  { kind: "evictor", count: 2, iterations: 200 },
  // Takes every claim for abandoned: evictors see their claims given back under them.
  { kind: "cleaner", count: 1, iterations: 100, claimGraceMs: 0 },
  { kind: "scanner", count: 1, iterations: 300 },
];
/** Warnings a run may give: claims given back by the cleaner. Anything else is a finding. */
const EXPECTED_WARNINGS = new Set(["gave back an entry whose eviction was interrupted"]);

describe("EntryStore across processes", () => {
  it(`keeps every returned path and every complete-looking slot whole under publishers, evictors and cleaners (CAS_SEED=${SEED})`, async () => {
    const rng = new Rng(SEED);
    const cache = await makeCache();
    const workers: Array<{ kind: string; worker: EntryProcess }> = [];
    for (const role of ROLES) {
      for (let i = 0; i < role.count; i++) {
        const worker = startEntryWorker({
          root: cache.root,
          ready: true,
          ...(role.claimGraceMs === undefined ? {} : { claimGraceMs: role.claimGraceMs }),
          role: { kind: role.kind, names: NAMES, iterations: role.iterations, seed: rng.fork() },
        });
        workers.push({ kind: role.kind, worker });
      }
    }
    await Promise.all(workers.map(({ worker }) => worker.waitFor((e) => e.event === "ready")));
    for (const { worker } of workers) worker.send("go");
    const exits = await Promise.all(workers.map(({ worker }) => worker.exited));
    expect(exits).toEqual(workers.map(() => null));

    const events = workers.flatMap(({ kind, worker }) => worker.events.map((e) => ({ kind, ...e })));
    const done = events.filter((e) => e.event === "done");
    expect(events.filter((e) => e.event === "error")).toEqual([]);
    expect(events.filter((e) => e.event === "warning" && !EXPECTED_WARNINGS.has(String(e.message)))).toEqual(
      [],
    );
    // Each worker reported every call it made.
    for (const { kind, worker } of workers) {
      const role = ROLES.find((r) => r.kind === kind);
      expect(
        worker.events.filter((e) => e.event === "done"),
        kind,
      ).toHaveLength(role?.iterations ?? -1);
    }
    const checks = done.filter((e) => e.check !== undefined);
    expect(checks.filter((e) => e.check !== "whole" && e.check !== "moved")).toEqual([]);

    const count = (pick: (e: EntryEvent & { kind: string }) => boolean) => done.filter(pick).length;
    const tally = {
      built: count((e) => e.outcome === "built"),
      hits: count((e) => e.op === "touch" && e.hit === true),
      evicted: count((e) => e.op === "evict" && e.evicted === true),
      lruRemoved: done.reduce((sum, e) => sum + (e.op === "lru" ? Number((e as EntryEvent).removed) : 0), 0),
      checkedWhole: count((e) => e.check === "whole"),
      scannedWhole: count((e) => e.op === "scan" && e.check === "whole"),
    };
    // The run did race: entries were built again after evictions, hit and read back. (How many of the
    // scanner's looks found an entry depends on the schedule; the tally says, on failure.)
    expect(tally.built, JSON.stringify(tally)).toBeGreaterThan(1);
    expect(tally.hits, JSON.stringify(tally)).toBeGreaterThan(0);
    expect(tally.evicted + tally.lruRemoved, JSON.stringify(tally)).toBeGreaterThan(0);
    expect(tally.checkedWhole, JSON.stringify(tally)).toBeGreaterThan(0);

    // Afterwards every slot is absent or complete and whole; no claim, temp or trash is left.
    for (const name of NAMES) {
      const slot = cache.slot(name);
      const state = (await cache.store.inspect(slot)).state;
      expect(["absent", "complete"], `${name}: ${state}`).toContain(state);
      if (state === "complete") expect(await treeProblem(slot, name), name).toBe("whole");
    }
    expect(await namesIn(cache.store.stagingDir)).toEqual([]);
    expect(await namesIn(cache.store.trashDir)).toEqual([]);
  });
});
