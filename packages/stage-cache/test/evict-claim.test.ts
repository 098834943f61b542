// An evictor claims an entry by renaming its sentinel to .cas-stage-evicting, checks that no hit touched
// it meanwhile, and only then moves the slot to trash. These tests put a slot in the claimed state by hand,
// as an evictor in the middle of its work (or killed there) leaves it.
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { STAGE_COMPLETE_SENTINEL, StageCache } from "../src/index.js";
import { sampleTree, tempDir } from "./fixtures.js";

const CLAIM = ".cas-stage-evicting";

async function claimedEntry() {
  const root = join(tempDir("root"), "cache");
  const source = sampleTree(tempDir("src"));
  const warnings: string[] = [];
  const cache = await StageCache.open({ root, onWarning: (message) => warnings.push(message) });
  const first = await StageCache.open({ root });
  const path = await first.stage(source, "claimed");
  await first.close();
  // A stamp proves later whether the entry was kept or rebuilt.
  writeFileSync(join(path, "stamp"), "original");
  renameSync(join(path, STAGE_COMPLETE_SENTINEL), join(path, CLAIM));
  return { root, source, cache, path, warnings };
}

describe("an entry claimed by an evictor", () => {
  it("is not a hit, and a stage waits for the evictor, which gives the entry back here", async () => {
    const { source, cache, path, warnings } = await claimedEntry();
    const staged = cache.stage(source, "claimed");
    // The evictor finds the entry was touched and un-claims it, some time after the stage began.
    await sleep(50);
    renameSync(join(path, CLAIM), join(path, STAGE_COMPLETE_SENTINEL));
    expect(await staged).toBe(path);
    expect(readFileSync(join(path, "stamp"), "utf8")).toBe("original");
    expect(warnings).toEqual([]);
    await cache.close();
  });

  it("is rebuilt, with a warning, once the claim is old enough that its evictor must have died", async () => {
    const { source, cache, path, warnings, root } = await claimedEntry();
    expect(await cache.stage(source, "claimed")).toBe(path);
    expect(existsSync(join(path, STAGE_COMPLETE_SENTINEL))).toBe(true);
    expect(existsSync(join(path, CLAIM))).toBe(false);
    expect(existsSync(join(path, "stamp"))).toBe(false);
    expect(warnings).toEqual(["removed an entry whose eviction was interrupted"]);
    expect(readdirSync(join(root, ".staging"))).toEqual([]);
    await cache.close();
  });

  it("is removed by open() with staleAfterMs: 0, and never listed as an entry", async () => {
    const { root, cache, path } = await claimedEntry();
    expect((await cache.sweep()).totalBytes).toBe(0);
    await cache.close();
    const cleaner = await StageCache.open({ root, staleAfterMs: 0 });
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(join(root, ".trash"))).toEqual([]);
    await cleaner.close();
  });
});
