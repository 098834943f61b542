import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Rng, seedFromEnv } from "@cas-stage/test-support/seed";
import { describe, expect, it } from "vitest";
import { stage, sweepStaleTemps } from "../src/index.js";
import { tempDir, tempsIn } from "./fixtures.js";
import { isCompleteTree, startWorker, type Worker } from "./processes.js";

const WORKERS = 8;
const FILES = 30;
// Every random choice (when to kill, each worker's pauses) comes from this seed; CAS_SEED=<seed> replays it.
const SEED = seedFromEnv();

describe("stage under SIGKILL", () => {
  it(`leaves every slot absent or complete, recoverable by a new stage, with debris swept by sweepStaleTemps (CAS_SEED=${SEED})`, async () => {
    const rng = new Rng(SEED);
    const parent = await tempDir();
    const slots = Array.from({ length: 6 }, (_, i) => `slot-${i}`);
    // Each worker stages the slots in its own rotation so that kills land before, during and after renames.
    const workers: Worker[] = [];
    for (let w = 0; w < WORKERS; w++) {
      const order = [...slots.slice(w % slots.length), ...slots.slice(0, w % slots.length)];
      const worker = startWorker([parent, order.join(","), String(FILES), "3", "", String(rng.fork())]);
      // Kill at a random moment after the worker's first temp dir holds a file: mid-build, usually.
      let building = 0;
      const target = 1 + rng.int(3);
      const delay = rng.next() * 60;
      worker.onEvent = (event) => {
        if (event.event === "building" && ++building === target) {
          setTimeout(() => worker.child.kill("SIGKILL"), delay);
        }
      };
      workers.push(worker);
    }
    const signals = await Promise.all(workers.map((w) => w.exited));
    expect(signals.filter((s) => s === "SIGKILL").length).toBeGreaterThan(0);
    const events = workers.flatMap((w) => w.events);
    expect(events.filter((e) => e.event === "error")).toEqual([]);

    const debris = await tempsIn(parent);
    expect(debris.length).toBeGreaterThan(0);
    for (const name of await readdir(parent)) {
      if (debris.includes(name)) continue;
      const slot = name;
      expect(await isCompleteTree(join(parent, slot), slot, FILES), slot).toBe(true);
    }

    // A new call for every slot succeeds: it builds the absent ones and adopts the finished ones.
    for (const slot of slots) {
      const final = join(parent, slot);
      await stage({
        parent,
        final,
        build: async (staging) => {
          await mkdir(join(staging, "d"));
          for (let i = 0; i < FILES; i++)
            await writeFile(join(staging, "d", `f${i}`), `${slot}:${i}\n`.repeat(64));
        },
        adopt: async () => (await readdir(final).catch(() => undefined)) !== undefined,
      });
      expect(await isCompleteTree(final, slot, FILES), slot).toBe(true);
    }

    const swept = await sweepStaleTemps(parent, { olderThanMs: 0 });
    expect(swept.map((p) => p.slice(parent.length + 1)).sort()).toEqual([...debris].sort());
    expect((await readdir(parent)).sort()).toEqual([...slots].sort());
  });
});
