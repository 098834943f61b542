// evictLeastRecentlyUsed: which entries a pass removes, on real slots through a real EntryStore, checked
// case by case and against a small model over seeded random inputs (CAS_SEED=<seed> replays a run).

import { rm } from "node:fs/promises";
import { Rng, seedFromEnv } from "@cas-stage/test-support/seed";
import { describe, expect, it } from "vitest";
import { type EvictionCandidate, type EvictionPolicy, evictLeastRecentlyUsed } from "../src/index.js";
import { gate, makeCache, publishEntry, setLastUsed, type TestCache } from "./entries.js";

const NOW = Date.UTC(2026, 0, 2);
const HOUR = 3_600_000;
const SEED = seedFromEnv();
const ROUNDS = 40;

/**
 * A cache holding one entry per spec, named e0, e1… (their slots in `slots`), each last used `ageMs` before
 * NOW and recorded as `bytes` big, listed as an eviction pass would list them. Hits on the names in
 * `touchedDuringPass` land between the pass's listing and its claim on that entry.
 */
async function cacheWith(specs: Array<{ ageMs: number; bytes: number }>, touchedDuringPass: string[] = []) {
  const cache = await makeCache();
  const touched = new Set(touchedDuringPass.map((name) => cache.slot(name)));
  const claims: string[] = [];
  const evictor = await makeCache({
    root: cache.root,
    hooks: {
      beforeClaim: async (slot) => {
        claims.push(slot);
        if (touched.has(slot)) expect(await cache.store.touch(slot)).toBe(true);
      },
    },
  });
  const candidates: EvictionCandidate[] = [];
  for (const [i, spec] of specs.entries()) {
    const name = `e${i}`;
    await publishEntry(cache, name);
    const lastUsedMs = await setLastUsed(cache.slot(name), NOW - spec.ageMs);
    candidates.push({ slot: cache.slot(name), bytes: spec.bytes, lastUsedMs });
  }
  return { cache, evictor: evictor.store, candidates, claims };
}

async function presentNames(cache: TestCache, count: number): Promise<string[]> {
  const present: string[] = [];
  for (let i = 0; i < count; i++) {
    if ((await cache.store.inspect(cache.slot(`e${i}`))).state === "complete") present.push(`e${i}`);
  }
  return present;
}

const names = (entries: EvictionCandidate[]) => entries.map((e) => e.slot.slice(e.slot.lastIndexOf("/") + 1));

describe("evictLeastRecentlyUsed", () => {
  it("removes every entry unused for olderThanMs, oldest first, and keeps the rest", async () => {
    const { cache, evictor, candidates } = await cacheWith([
      { ageMs: 1 * HOUR, bytes: 10 },
      { ageMs: 5 * HOUR, bytes: 20 },
      { ageMs: 3 * HOUR, bytes: 40 },
      { ageMs: 2 * HOUR, bytes: 80 },
    ]);
    const report = await evictLeastRecentlyUsed(evictor, candidates, { olderThanMs: 3 * HOUR }, NOW);
    expect(names(report.removed)).toEqual(["e1", "e2"]);
    expect(report.freedBytes).toBe(60);
    expect(report.remainingBytes).toBe(90);
    expect(await presentNames(cache, 4)).toEqual(["e0", "e3"]);
  });

  it("removes least recently used entries until the total is at most maxBytes", async () => {
    const { cache, evictor, candidates } = await cacheWith([
      { ageMs: 4 * HOUR, bytes: 30 },
      { ageMs: 3 * HOUR, bytes: 30 },
      { ageMs: 2 * HOUR, bytes: 30 },
      { ageMs: 1 * HOUR, bytes: 30 },
    ]);
    const report = await evictLeastRecentlyUsed(evictor, candidates, { maxBytes: 60 }, NOW);
    expect(names(report.removed)).toEqual(["e0", "e1"]);
    expect(report).toMatchObject({ freedBytes: 60, remainingBytes: 60 });
    expect(await presentNames(cache, 4)).toEqual(["e2", "e3"]);
  });

  it("applies both limits: the expired ones, then more while over the size", async () => {
    const { evictor, candidates } = await cacheWith([
      { ageMs: 9 * HOUR, bytes: 5 },
      { ageMs: 3 * HOUR, bytes: 50 },
      { ageMs: 2 * HOUR, bytes: 50 },
      { ageMs: 1 * HOUR, bytes: 50 },
    ]);
    const report = await evictLeastRecentlyUsed(
      evictor,
      candidates,
      { olderThanMs: 5 * HOUR, maxBytes: 100 },
      NOW,
    );
    expect(names(report.removed)).toEqual(["e0", "e1"]);
    expect(report).toMatchObject({ freedBytes: 55, remainingBytes: 100 });
  });

  it("with neither limit (or maxBytes 0) removes nothing and only measures", async () => {
    const { cache, evictor, candidates, claims } = await cacheWith([
      { ageMs: 9 * HOUR, bytes: 5 },
      { ageMs: 1 * HOUR, bytes: 7 },
    ]);
    for (const policy of [{}, { maxBytes: 0 }, { minAgeMs: 0 }]) {
      expect(await evictLeastRecentlyUsed(evictor, candidates, policy, NOW)).toEqual({
        removed: [],
        freedBytes: 0,
        remainingBytes: 12,
      });
    }
    expect(claims).toEqual([]);
    expect(await presentNames(cache, 2)).toEqual(["e0", "e1"]);
  });

  it("never removes an entry used within minAgeMs, whatever the limits say", async () => {
    const { evictor, candidates } = await cacheWith([
      { ageMs: 3 * HOUR, bytes: 50 },
      { ageMs: 2 * HOUR, bytes: 50 },
      { ageMs: 1 * HOUR, bytes: 50 },
    ]);
    const report = await evictLeastRecentlyUsed(
      evictor,
      candidates,
      { maxBytes: 1, olderThanMs: 0, minAgeMs: 2 * HOUR },
      NOW,
    );
    expect(names(report.removed)).toEqual(["e0", "e1"]);
    expect(report.remainingBytes).toBe(50);
  });

  it("in a dry run reports what would go and removes nothing", async () => {
    const { cache, evictor, candidates, claims } = await cacheWith([
      { ageMs: 3 * HOUR, bytes: 50 },
      { ageMs: 2 * HOUR, bytes: 50 },
      { ageMs: 1 * HOUR, bytes: 50 },
    ]);
    const report = await evictLeastRecentlyUsed(evictor, candidates, { maxBytes: 60, dryRun: true }, NOW);
    expect(names(report.removed)).toEqual(["e0", "e1"]);
    expect(report).toMatchObject({ freedBytes: 100, remainingBytes: 50 });
    expect(claims).toEqual([]);
    expect(await presentNames(cache, 3)).toEqual(["e0", "e1", "e2"]);
  });

  it("skips an entry a hit touched since the listing, counts it as remaining, and moves on to the next", async () => {
    const { cache, evictor, candidates } = await cacheWith(
      [
        { ageMs: 4 * HOUR, bytes: 30 },
        { ageMs: 3 * HOUR, bytes: 30 },
        { ageMs: 2 * HOUR, bytes: 30 },
        { ageMs: 1 * HOUR, bytes: 30 },
      ],
      ["e0"],
    );
    const report = await evictLeastRecentlyUsed(evictor, candidates, { maxBytes: 60 }, NOW);
    expect(names(report.removed)).toEqual(["e1", "e2"]);
    expect(report).toMatchObject({ freedBytes: 60, remainingBytes: 60 });
    expect(await presentNames(cache, 4)).toEqual(["e0", "e3"]);
  });

  it("skips an entry another process removed meanwhile", async () => {
    const { cache, evictor, candidates } = await cacheWith([
      { ageMs: 2 * HOUR, bytes: 30 },
      { ageMs: 1 * HOUR, bytes: 30 },
    ]);
    expect(await cache.store.evict(cache.slot("e0"), candidates[0]?.lastUsedMs ?? 0)).toBe(true);
    const report = await evictLeastRecentlyUsed(evictor, candidates, { maxBytes: 1 }, NOW);
    expect(names(report.removed)).toEqual(["e1"]);
    expect(report.remainingBytes).toBe(30);
  });

  it("takes candidates in any order, leaves the caller's array as it was, and measures age from now by default", async () => {
    const { evictor, candidates } = await cacheWith([
      { ageMs: -2 * HOUR, bytes: 1 },
      { ageMs: -1 * HOUR, bytes: 1 },
    ]);
    const reversed = [...candidates].reverse();
    const copy = [...reversed];
    // Relative to NOW these are in the future; relative to the real clock (2026 and later) years old.
    const report = await evictLeastRecentlyUsed(evictor, reversed, { olderThanMs: HOUR });
    expect(names(report.removed)).toEqual(["e1", "e0"]);
    expect(reversed).toEqual(copy);
  });

  it("throws what evict throws", async () => {
    const { cache, evictor, candidates } = await cacheWith([{ ageMs: HOUR, bytes: 1 }]);
    await rm(cache.store.trashDir, { recursive: true });
    await expect(
      evictLeastRecentlyUsed(evictor, candidates, { maxBytes: 0, olderThanMs: 0 }, NOW),
    ).rejects.toMatchObject({ name: "CasError", code: "ENOENT" });
  });

  it("waits for each eviction before deciding on the next", async () => {
    const held = gate();
    const cache = await makeCache();
    const evictor = (await makeCache({ root: cache.root, hooks: { beforeTrash: held.hook } })).store;
    const candidates: EvictionCandidate[] = [];
    for (const name of ["e0", "e1"]) {
      await publishEntry(cache, name);
      candidates.push({
        slot: cache.slot(name),
        bytes: 1,
        lastUsedMs: await setLastUsed(cache.slot(name), NOW),
      });
    }
    const pass = evictLeastRecentlyUsed(evictor, candidates, { olderThanMs: 0 }, NOW);
    await held.reached;
    expect(held.times).toBe(1);
    held.release();
    expect(names((await pass).removed)).toEqual(["e0", "e1"]);
    expect(held.times).toBe(2);
  });
});

/** The documented rules, written independently of the implementation. */
function model(
  candidates: EvictionCandidate[],
  policy: EvictionPolicy,
  now: number,
  touched: Set<string>,
): { removed: string[]; freedBytes: number; remainingBytes: number } {
  const oldestFirst = candidates
    .map((c, i) => ({ ...c, i }))
    .sort((a, b) => a.lastUsedMs - b.lastUsedMs || a.i - b.i);
  const total = candidates.reduce((sum, c) => sum + c.bytes, 0);
  let remainingBytes = total;
  const removed: string[] = [];
  for (const entry of oldestFirst) {
    const age = now - entry.lastUsedMs;
    if (age < (policy.minAgeMs ?? 0)) break;
    const expired = policy.olderThanMs !== undefined && age >= policy.olderThanMs;
    const overCap = (policy.maxBytes ?? 0) > 0 && remainingBytes > (policy.maxBytes ?? 0);
    if (!expired && !overCap) break;
    if (!policy.dryRun && touched.has(entry.slot)) continue;
    removed.push(entry.slot);
    remainingBytes -= entry.bytes;
  }
  return { removed, freedBytes: total - remainingBytes, remainingBytes };
}

describe("evictLeastRecentlyUsed against a model", () => {
  it(`agrees with the model over ${ROUNDS} random caches and policies (CAS_SEED=${SEED})`, async () => {
    const rng = new Rng(SEED);
    const ages = [0, 1, HOUR - 1, HOUR, HOUR + 1, 2 * HOUR, 5 * HOUR, 24 * HOUR];
    for (let round = 0; round < ROUNDS; round++) {
      const count = 1 + rng.int(7);
      const specs = Array.from({ length: count }, () => ({
        ageMs: rng.pick(ages) + rng.int(3),
        bytes: rng.int(100),
      }));
      const touchedNames = Array.from({ length: count }, (_, i) => `e${i}`).filter(() => rng.int(4) === 0);
      const policy: EvictionPolicy = {
        maxBytes: rng.pick([undefined, 0, 1, 50, 100, 200, 400]),
        olderThanMs: rng.pick([undefined, 0, HOUR, 2 * HOUR, 24 * HOUR]),
        minAgeMs: rng.pick([undefined, 0, 1, HOUR, 5 * HOUR]),
        dryRun: rng.int(5) === 0,
      };
      const { cache, evictor, candidates } = await cacheWith(specs, touchedNames);
      const touched = new Set(touchedNames.map((name) => cache.slot(name)));
      const listed = rng.shuffle(candidates);
      const expected = model(listed, policy, NOW, touched);
      const context = `round ${round}: ${JSON.stringify({ specs, touchedNames, policy })}`;
      const report = await evictLeastRecentlyUsed(evictor, listed, policy, NOW);
      expect(
        {
          removed: report.removed.map((e) => e.slot),
          freedBytes: report.freedBytes,
          remainingBytes: report.remainingBytes,
        },
        context,
      ).toEqual(expected);
      const gone = policy.dryRun ? [] : expected.removed;
      for (const candidate of candidates) {
        const state = (await cache.store.inspect(candidate.slot)).state;
        expect(state, `${context}: ${candidate.slot}`).toBe(
          gone.includes(candidate.slot) ? "absent" : "complete",
        );
      }
    }
  });
});
