import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Rng, seedFromEnv } from "@cas-stage/test-support/seed";
import { describe, expect, it } from "vitest";
import { tempDir, tempsIn } from "./fixtures.js";
import { isCompleteTree, startWorker } from "./processes.js";

const WORKERS = 8;
const SLOTS = 40;
const FILES = 12;
// Each worker takes the slots in its own order, drawn from this seed; CAS_SEED=<seed> replays the orders.
const SEED = seedFromEnv();

describe("stage across processes", () => {
  it(`lets exactly one of ${WORKERS} racing processes build each slot and the rest adopt it (CAS_SEED=${SEED})`, async () => {
    const rng = new Rng(SEED);
    const parent = await tempDir();
    const go = join(await tempDir(), "go");
    const slots = Array.from({ length: SLOTS }, (_, i) => `slot-${i}`);
    const workers = Array.from({ length: WORKERS }, () =>
      startWorker([parent, rng.shuffle(slots).join(","), String(FILES), "0", go]),
    );
    await writeFile(go, "");
    const signals = await Promise.all(workers.map((w) => w.exited));
    expect(signals).toEqual(Array(WORKERS).fill(null));

    const events = workers.flatMap((w) => w.events).filter((e) => e.event !== "building");
    expect(events.filter((e) => e.event === "error")).toEqual([]);
    expect(events).toHaveLength(WORKERS * SLOTS);
    for (const slot of slots) {
      const forSlot = events.filter((e) => e.slot === slot);
      expect(
        forSlot.filter((e) => e.adopted === false),
        slot,
      ).toHaveLength(1);
      expect(
        forSlot.filter((e) => e.adopted === true),
        slot,
      ).toHaveLength(WORKERS - 1);
      expect(await isCompleteTree(join(parent, slot), slot, FILES), slot).toBe(true);
    }
    expect(await tempsIn(parent)).toEqual([]);
  });

  it(`lets exactly one of ${WORKERS} racing processes publish each slot even when every build is empty (CAS_SEED=${SEED})`, async () => {
    const rng = new Rng(SEED + 1);
    const parent = await tempDir();
    const go = join(await tempDir(), "go");
    const slots = Array.from({ length: SLOTS }, (_, i) => `slot-${i}`);
    const workers = Array.from({ length: WORKERS }, () =>
      startWorker([parent, rng.shuffle(slots).join(","), "empty", "0", go]),
    );
    await writeFile(go, "");
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual(Array(WORKERS).fill(null));
    const events = workers.flatMap((w) => w.events);
    expect(events.filter((e) => e.event === "error")).toEqual([]);
    for (const slot of slots) {
      const winners = events.filter((e) => e.slot === slot && e.adopted === false);
      expect(winners, slot).toHaveLength(1);
      expect(await readdir(join(parent, slot)), slot).toEqual([]);
    }
    expect(await tempsIn(parent)).toEqual([]);
  });
});
