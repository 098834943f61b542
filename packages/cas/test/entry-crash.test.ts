// EntryStore under SIGKILL: worker processes print a line when they reach a protocol hook and wait there,
// so the test kills each exactly at that point. Afterwards every slot must be absent, complete, or claimed
// and whole; the repairs (repairClaim, makeWay, removeAbandonedTrash, and sweepStaleTemps for the build
// temps) must bring everything back; and nothing may be left behind.
import { Rng, seedFromEnv } from "@cas-stage/test-support/seed";
import { describe, expect, it } from "vitest";
import { sweepStaleTemps } from "../src/index.js";
import {
  CLAIM,
  LONG_AGO,
  lastUsed,
  makeCache,
  markers,
  namesIn,
  publishEntry,
  SENTINEL,
  setLastUsed,
  type TestCache,
  treeProblem,
} from "./entries.js";
import { type EntryProcess, startEntryWorker } from "./entry-processes.js";

const SEED = seedFromEnv();

/** Starts a worker making `call` that pauses at `hook`, waits until it is there, and SIGKILLs it. */
async function killAt(
  cache: TestCache,
  hook: string,
  call: { op: string; name: string },
): Promise<EntryProcess> {
  const worker = startEntryWorker({ root: cache.root, pauseAt: [hook], calls: [call] });
  await worker.waitFor((e) => e.event === "at" && e.hook === hook);
  worker.child.kill("SIGKILL");
  expect(await worker.exited).toBe("SIGKILL");
  return worker;
}

/** The invariant after any crash: each slot absent, complete and whole, or claimed and whole. */
async function expectEachSlotSafe(cache: TestCache, names: string[]): Promise<Record<string, string>> {
  const states: Record<string, string> = {};
  for (const name of names) {
    const slot = cache.slot(name);
    const { state } = await cache.store.inspect(slot);
    states[name] = state;
    expect(["absent", "complete", "claimed"], `${name}: ${state}`).toContain(state);
    if (state !== "absent") expect(await treeProblem(slot, name), name).toBe("whole");
  }
  return states;
}

/** Runs every repair, as a later process would, and checks that nothing is left behind. */
async function repairAll(cache: TestCache, names: string[]): Promise<void> {
  // A later process: claims older than its grace (0 here: the killed evictors are dead) are given back.
  const later = await makeCache({ root: cache.root, claimGraceMs: 0 });
  for (const name of names) {
    await later.store.repairClaim(cache.slot(name));
    await later.store.makeWay(cache.slot(name));
  }
  await later.store.removeAbandonedTrash(0);
  await sweepStaleTemps(cache.store.stagingDir, { olderThanMs: 0 });
  for (const name of names) {
    const slot = cache.slot(name);
    const { state } = await cache.store.inspect(slot);
    expect(["absent", "complete"], `${name} after repair: ${state}`).toContain(state);
    if (state === "complete") {
      expect(await markers(slot), name).toEqual([SENTINEL]);
      expect(await treeProblem(slot, name), name).toBe("whole");
    }
  }
  expect(await namesIn(cache.store.stagingDir)).toEqual([]);
  expect(await namesIn(cache.store.trashDir)).toEqual([]);
  // And every entry can be published again: a hit or a fresh build, whole.
  for (const name of names) {
    const { outcome } = await publishEntry(later, name);
    expect(["hit", "built"], name).toContain(outcome);
    expect(await treeProblem(cache.slot(name), name)).toBe("whole");
  }
}

describe("EntryStore under SIGKILL at each step", () => {
  it("leaves each slot absent, complete or claimed-and-whole, and the repairs restore everything", async () => {
    const cache = await makeCache();
    const evicted = ["bc1", "bt1", "at1", "ah1"];
    for (const name of evicted) {
      await publishEntry(cache, name);
      await setLastUsed(cache.slot(name), LONG_AGO);
    }
    await killAt(cache, "beforeClaim", { op: "evict", name: "bc1" });
    await killAt(cache, "beforeTrash", { op: "evict", name: "bt1" });
    const afterTrash = await killAt(cache, "afterTrash", { op: "evict", name: "at1" });
    await killAt(cache, "afterTouch", { op: "touch", name: "ah1" });
    const building = await killAt(cache, "building", { op: "publish", name: "pb1" });
    const names = [...evicted, "pb1"];

    expect(await expectEachSlotSafe(cache, names)).toEqual({
      bc1: "complete",
      bt1: "claimed",
      at1: "absent",
      ah1: "complete",
      pb1: "absent",
    });
    // Killed before its claim: untouched. After its claim: whole under the claim, last use kept.
    expect(await lastUsed(cache.slot("bc1"))).toBe(LONG_AGO);
    expect(await lastUsed(cache.slot("bt1"), CLAIM)).toBe(LONG_AGO);
    // Killed after the move: the entry is whole in the trash, under a young name a cleaner leaves alone.
    const trash = String(afterTrash.events.find((e) => e.event === "at")?.trash);
    expect(await namesIn(cache.store.trashDir)).toEqual([trash.slice(cache.store.trashDir.length + 1)]);
    expect(await markers(trash)).toEqual([CLAIM]);
    expect(await treeProblem(trash, "at1")).toBe("whole");
    expect(await cache.store.removeAbandonedTrash()).toEqual({ paths: [] });
    // The hit had marked its entry used before it died.
    expect(await lastUsed(cache.slot("ah1"))).toBeGreaterThan(LONG_AGO);
    // The killed build left its temp dir in the staging dir, nowhere else.
    const staging = String(building.events.find((e) => e.event === "at")?.staging);
    expect(await namesIn(cache.store.stagingDir)).toEqual([staging.slice(cache.store.stagingDir.length + 1)]);

    // A claim of a dead evictor is waited for only while it is young, then given back whole.
    const waiting = await makeCache({ root: cache.root, claimGraceMs: 50 });
    expect(await waiting.store.publish(cache.slot("bt1"), { build: () => "never used" })).toMatchObject({
      outcome: "hit",
    });
    expect(waiting.warnings).toEqual([
      { message: "gave back an entry whose eviction was interrupted", path: cache.slot("bt1") },
    ]);
    expect(await treeProblem(cache.slot("bt1"), "bt1")).toBe("whole");

    await repairAll(cache, names);
  });

  it(`survives a storm of evictors, hitters and publishers killed at random hooks (CAS_SEED=${SEED})`, async () => {
    const rng = new Rng(SEED);
    const cache = await makeCache();
    const names = ["ab1", "ab2", "cd1", "cd2"];
    for (const name of names) {
      if (rng.int(4) === 0) continue;
      await publishEntry(cache, name);
      await setLastUsed(cache.slot(name), LONG_AGO + rng.int(1000));
    }
    const plans = [
      { hook: "beforeClaim", op: "evict" },
      { hook: "beforeTrash", op: "evict" },
      { hook: "afterTrash", op: "evict" },
      { hook: "afterTouch", op: "touch" },
      { hook: "building", op: "publish" },
    ];
    // Started together; those whose call never reaches its hook (another worker got there first) finish.
    const workers = Array.from({ length: 10 }, () => {
      const plan = rng.pick(plans);
      return startEntryWorker({
        root: cache.root,
        pauseAt: [plan.hook],
        calls: [{ op: plan.op, name: rng.pick(names) }],
      });
    });
    await Promise.all(
      workers.map((worker) =>
        Promise.race([
          worker.waitFor((e) => e.event === "at").then(() => worker.child.kill("SIGKILL")),
          worker.exited,
        ]),
      ),
    );
    await Promise.all(workers.map((w) => w.exited));
    const killed = workers.filter((w) => w.child.signalCode === "SIGKILL").length;
    expect(killed).toBeGreaterThan(0);
    for (const worker of workers) expect(worker.events.filter((e) => e.event === "error")).toEqual([]);

    await expectEachSlotSafe(cache, names);
    await repairAll(cache, names);
  });
});
