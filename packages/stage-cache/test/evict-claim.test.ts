// An evictor claims an entry by renaming its sentinel to .cas-stage-evicting, checks that no hit touched it
// meanwhile, and only then moves the slot to trash. These tests put a slot in the claimed state by hand, as
// an evictor in the middle of its work (or killed there) leaves it. The age at which a claim counts as left
// by a dead evictor is injected, so no test waits for it.
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TEST_HOOKS, type TestHooks } from "../src/cache.js";
import { STAGE_COMPLETE_SENTINEL, StageCache, type StageCacheOptions } from "../src/index.js";
import { sampleTree, tempDir, until } from "./fixtures.js";

const CLAIM = ".cas-stage-evicting";
const HOUR_MS = 3_600_000;

async function claimedEntry(claimGraceMs: number) {
  const root = join(tempDir("root"), "cache");
  const source = sampleTree(tempDir("src"));
  const warnings: string[] = [];
  const first = await StageCache.open({ root });
  const path = await first.stage(source, "claimed");
  await first.close();
  // A stamp proves later whether the entry was kept or rebuilt.
  writeFileSync(join(path, "stamp"), "original");
  renameSync(join(path, STAGE_COMPLETE_SENTINEL), join(path, CLAIM));
  const hooks: TestHooks = { claimGraceMs };
  const cache = await StageCache.open({
    root,
    onWarning: (message) => warnings.push(message),
    [TEST_HOOKS]: hooks,
  } as StageCacheOptions);
  return { root, source, cache, path, warnings };
}

describe("an entry claimed by an evictor", () => {
  it("is not a hit, and a stage waits for the evictor, which gives the entry back here", async () => {
    const { root, source, cache, path, warnings } = await claimedEntry(HOUR_MS);
    let copied = 0;
    let settled = false;
    const staged = cache.stage(source, "claimed", { onProgress: () => copied++ }).finally(() => {
      settled = true;
    });
    // Not a hit: the stage copies. Its copy cannot be published over the claimed slot, so once its temp
    // dir is gone it is waiting for the evictor's outcome.
    await until(
      () => copied === 6 && readdirSync(join(root, ".staging")).length === 0,
      "the copy was discarded",
    );
    expect(settled).toBe(false);
    // The evictor finds the entry was touched and un-claims it.
    renameSync(join(path, CLAIM), join(path, STAGE_COMPLETE_SENTINEL));
    expect(await staged).toBe(path);
    expect(readFileSync(join(path, "stamp"), "utf8")).toBe("original");
    expect(warnings).toEqual([]);
    await cache.close();
  });

  it("is given back whole, with a warning, once the claim is old enough that its evictor must have died", async () => {
    const { source, cache, path, warnings, root } = await claimedEntry(0);
    expect(await cache.stage(source, "claimed")).toBe(path);
    expect(existsSync(join(path, STAGE_COMPLETE_SENTINEL))).toBe(true);
    expect(existsSync(join(path, CLAIM))).toBe(false);
    expect(readFileSync(join(path, "stamp"), "utf8")).toBe("original");
    expect(warnings).toEqual(["gave back an entry whose eviction was interrupted"]);
    expect(readdirSync(join(root, ".staging"))).toEqual([]);
    await cache.close();
  });

  it("is not returned by a hit whose touch an evictor's claim followed at once", async () => {
    const root = join(tempDir("root"), "cache");
    const source = sampleTree(tempDir("src"));
    const first = await StageCache.open({ root });
    const path = await first.stage(source, "claimed");
    await first.close();
    const warnings: string[] = [];
    let claimed = false;
    // The evictor claims right after the hit set the sentinel's times: the hit must see it and miss.
    const hooks: TestHooks = {
      claimGraceMs: 0,
      afterTouch: (slot) => {
        if (claimed) return;
        claimed = true;
        renameSync(join(slot, STAGE_COMPLETE_SENTINEL), join(slot, CLAIM));
      },
    };
    const cache = await StageCache.open({
      root,
      onWarning: (message) => warnings.push(message),
      [TEST_HOOKS]: hooks,
    } as StageCacheOptions);
    expect(await cache.stage(source, "claimed")).toBe(path);
    expect(claimed).toBe(true);
    // Returned only once the entry was whole and unclaimed again (here: given back as an abandoned claim).
    expect(existsSync(join(path, STAGE_COMPLETE_SENTINEL))).toBe(true);
    expect(warnings).toEqual(["gave back an entry whose eviction was interrupted"]);
    await cache.close();
  });

  it("is listed as debris, never as an entry, and given back by open() once its claim is old", async () => {
    const { root, cache, path } = await claimedEntry(HOUR_MS);
    const listing = await cache.list();
    expect(listing.entries).toEqual([]);
    expect(listing.debris).toEqual([{ kind: "claimed", path, bytes: expect.any(Number), stale: false }]);
    expect((await cache.sweep()).totalBytes).toBe(0);
    await cache.close();
    const cleaner = await StageCache.open({ root, staleAfterMs: 0 });
    expect(readFileSync(join(path, "stamp"), "utf8")).toBe("original");
    expect((await cleaner.list()).entries.map((entry) => entry.path)).toEqual([path]);
    expect(readdirSync(join(root, ".trash"))).toEqual([]);
    await cleaner.close();
  });
});
