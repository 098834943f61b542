import {
  existsSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TEST_HOOKS, type TestHooks } from "../src/cache.js";
import { STAGE_COMPLETE_SENTINEL, StageCache, type StageCacheOptions } from "../src/index.js";
import { tempDir, writeTree } from "./fixtures.js";

const CLAIM = ".cas-stage-evicting";

/** An entry's last use is its sentinel's mtime. */
function sentinelOf(slot: string): string {
  return join(slot, STAGE_COMPLETE_SENTINEL);
}

function openWithHooks(options: StageCacheOptions, hooks: TestHooks): Promise<StageCache> {
  return StageCache.open({ ...options, [TEST_HOOKS]: hooks } as StageCacheOptions);
}

/** Stages `count` entries of 1000 bytes each and ages them: entry i was last used i+1 hours ago. */
async function agedEntries(root: string, count: number): Promise<string[]> {
  // A cache without a cap, so no background pass runs while the fixture is made.
  const cache = await StageCache.open({ root });
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const source = writeTree(tempDir("src"), { data: Buffer.alloc(1000, i) });
    const path = await cache.stage(source, `entry-${i}`);
    const when = new Date(Date.now() - (i + 1) * 3_600_000);
    utimesSync(sentinelOf(path), when, when);
    paths.push(path);
  }
  await cache.close();
  return paths;
}

/** A hit as another process makes it: the sentinel's times set to now. */
function touch(path: string): void {
  const now = new Date();
  utimesSync(path, now, now);
}

describe("eviction", () => {
  it("removes complete entries oldest-used first until the total is at most maxBytes", async () => {
    const root = join(tempDir("root"), "cache");
    const paths = await agedEntries(root, 5);
    const cache = await StageCache.open({ root, maxBytes: 2500, minAgeMs: 60_000 });
    const result = await cache.sweep();
    // entry-4 is the oldest, then entry-3 and entry-2.
    expect(result).toEqual({
      removed: [paths[4], paths[3], paths[2]],
      freedBytes: 3000,
      totalBytes: 2000,
      measuredOnly: false,
    });
    expect(existsSync(paths[1] as string)).toBe(true);
    expect(existsSync(paths[2] as string)).toBe(false);
    expect(readdirSync(join(root, ".trash"))).toEqual([]);
    await cache.close();
  });

  it("never removes an entry used within minAgeMs", async () => {
    const root = join(tempDir("root"), "cache");
    const [recent, old] = await agedEntries(root, 2);
    const cache = await StageCache.open({ root, maxBytes: 1, minAgeMs: 60_000 });
    touch(sentinelOf(recent as string));
    expect((await cache.sweep()).removed).toEqual([old]);
    expect(existsSync(recent as string)).toBe(true);
    await cache.close();
  });

  it("never removes incomplete entries and removes emptied fan-out directories", async () => {
    const root = join(tempDir("root"), "cache");
    const [path] = await agedEntries(root, 1);
    const cache = await StageCache.open({ root, maxBytes: 1, minAgeMs: 0 });
    const foreign = join(root, "fo", "foreign");
    writeTree(foreign, { big: Buffer.alloc(5000) });
    const old = new Date(0);
    utimesSync(foreign, old, old);
    const result = await cache.sweep();
    expect(result).toEqual({ removed: [path], freedBytes: 1000, totalBytes: 0, measuredOnly: false });
    expect(existsSync(join(root, "en"))).toBe(false);
    expect(existsSync(foreign)).toBe(true);
    await cache.close();
  });

  it("has no cap with maxBytes 0 (the default): a sweep removes nothing and says it only measured", async () => {
    const root = join(tempDir("root"), "cache");
    await agedEntries(root, 3);
    for (const options of [{ minAgeMs: 0 }, { minAgeMs: 0, maxBytes: 0 }]) {
      const cache = await StageCache.open({ root, ...options });
      expect(await cache.sweep()).toEqual({
        removed: [],
        freedBytes: 0,
        totalBytes: 3000,
        measuredOnly: true,
      });
      await cache.close();
    }
  });

  it("reports, in a dry run, what a pass would remove, and removes nothing", async () => {
    const root = join(tempDir("root"), "cache");
    const paths = await agedEntries(root, 3);
    const cache = await StageCache.open({ root, maxBytes: 1500, minAgeMs: 60_000 });
    const dry = await cache.sweep({ dryRun: true });
    expect(dry).toEqual({
      removed: [paths[2], paths[1]],
      freedBytes: 2000,
      totalBytes: 1000,
      measuredOnly: false,
    });
    for (const path of paths) expect(existsSync(sentinelOf(path))).toBe(true);
    expect(await cache.sweep()).toEqual(dry);
    await cache.close();
  });

  it("removes trash no evictor can restore any more on each pass, and keeps younger trash", async () => {
    const root = join(tempDir("root"), "cache");
    await agedEntries(root, 1);
    const cache = await StageCache.open({ root, maxBytes: 1e9, cleanOnOpen: false });
    const old = writeTree(join(root, ".trash", `gone.${(Date.now() - 120_000).toString(36)}.0123456789ab`), {
      f: "x",
    });
    const young = writeTree(join(root, ".trash", `going.${Date.now().toString(36)}.0123456789ab`), {
      f: "x",
    });
    await cache.sweep();
    expect(existsSync(old)).toBe(false);
    expect(existsSync(young)).toBe(true);
    await cache.close();
  });

  it("runs in the background after a miss, never after a hit, and close() waits for it", async () => {
    const root = join(tempDir("root"), "cache");
    const paths = await agedEntries(root, 2);
    const cache = await StageCache.open({ root, maxBytes: 1500, minAgeMs: 60_000 });
    // Both entries are old and over the cap, but hits never trigger a sweep.
    const reader = await StageCache.open({ root, maxBytes: 1500, minAgeMs: 60_000 });
    const old = new Date(Date.now() - 7_200_000);
    await reader.stage(tempDir("unused"), "entry-1");
    utimesSync(sentinelOf(paths[1] as string), old, old);
    await reader.close();
    expect(existsSync(paths[1] as string)).toBe(true);
    // A miss does: the new entry is young, so the oldest goes.
    await cache.stage(writeTree(tempDir("src"), { data: Buffer.alloc(10) }), "fresh");
    await cache.close();
    expect(existsSync(paths[1] as string)).toBe(false);
    expect(existsSync(paths[0] as string)).toBe(true);
  });

  it("reports background failures through onWarning, and gives back the entry it could not move", async () => {
    const root = join(tempDir("root"), "cache");
    const warnings: string[] = [];
    const [path] = await agedEntries(root, 1);
    const cache = await StageCache.open({
      root,
      maxBytes: 1,
      minAgeMs: 0,
      onWarning: (m) => warnings.push(m),
    });
    // A file where the trash directory should be: every move to the trash fails (ENOTDIR).
    const { rmSync } = await import("node:fs");
    rmSync(join(root, ".trash"), { recursive: true });
    writeFileSync(join(root, ".trash"), "");
    await cache.stage(writeTree(tempDir("src"), { data: "x" }), "trigger");
    await cache.close();
    expect(warnings.some((message) => message.startsWith("eviction failed:"))).toBe(true);
    expect(existsSync(sentinelOf(path as string))).toBe(true);
  });
});

describe("an entry used while a pass removes it", () => {
  /**
   * A pass over one old entry, with `hook` run at one point of the protocol as a peer's hit there would
   * act. Every point the pass reaches is recorded, so a test also sees where the pass stopped.
   */
  async function passWith(hook: (slot: string) => TestHooks) {
    const root = join(tempDir("root"), "cache");
    const [path] = (await agedEntries(root, 1)) as [string];
    writeFileSync(join(path, "stamp"), "original");
    const reached: string[] = [];
    const acting = hook(path) as Record<string, (...args: unknown[]) => unknown>;
    const traced = Object.fromEntries(
      ["afterList", "beforeClaim", "beforeTrash", "afterTrash"].map((name) => [
        name,
        async (...args: unknown[]) => {
          reached.push(name);
          await acting[name]?.(...args);
        },
      ]),
    ) as TestHooks;
    const cache = await openWithHooks({ root, maxBytes: 1, minAgeMs: 60_000 }, traced);
    const result = await cache.sweep();
    await cache.close();
    return { path, result, reached };
  }

  function expectKept(path: string, result: { removed: string[] }) {
    expect(result.removed).toEqual([]);
    expect(existsSync(sentinelOf(path))).toBe(true);
    expect(existsSync(join(path, CLAIM))).toBe(false);
    expect(readFileSync(join(path, "stamp"), "utf8")).toBe("original");
    expect(readFileSync(join(path, "data"))).toEqual(Buffer.alloc(1000, 0));
  }

  it("keeps it when the hit came between the listing and the re-check", async () => {
    const { path, result, reached } = await passWith((slot) => ({
      afterList: () => touch(sentinelOf(slot)),
    }));
    expect(reached).toEqual(["afterList"]);
    expectKept(path, result);
  });

  it("keeps it when the hit came between the re-check and the claim", async () => {
    const { path, result, reached } = await passWith((slot) => ({
      beforeClaim: () => touch(sentinelOf(slot)),
    }));
    // Claimed, then given back at once: never moved.
    expect(reached).toEqual(["afterList", "beforeClaim"]);
    expectKept(path, result);
  });

  it("keeps it when a hit that found the sentinel before the claim lands after the check of the claim", async () => {
    // The hit resolved the sentinel's inode before the claim renamed it, and sets its times now: on the claim.
    const { path, result, reached } = await passWith((slot) => ({
      beforeTrash: () => touch(join(slot, CLAIM)),
    }));
    // Moved to the trash, seen touched there by the last look, moved back.
    expect(reached).toEqual(["afterList", "beforeClaim", "beforeTrash", "afterTrash"]);
    expectKept(path, result);
  });

  it("moves it back when such a hit lands after the move to the trash", async () => {
    const { path, result, reached } = await passWith(() => ({
      afterTrash: (_slot: string, trash: string) => touch(join(trash, CLAIM)),
    }));
    expect(reached).toEqual(["afterList", "beforeClaim", "beforeTrash", "afterTrash"]);
    expectKept(path, result);
  });

  it("removes it when nothing touched it at any of those points", async () => {
    const { path, result, reached } = await passWith(() => ({}));
    expect(reached).toEqual(["afterList", "beforeClaim", "beforeTrash", "afterTrash"]);
    expect(result.removed).toEqual([path]);
    expect(existsSync(path)).toBe(false);
  });

  it("gives back, not removes, an entry an interrupted evictor left claimed, once its claim is old", async () => {
    const root = join(tempDir("root"), "cache");
    const [path] = (await agedEntries(root, 1)) as [string];
    renameSync(sentinelOf(path), join(path, CLAIM));
    const young = await openWithHooks({ root, minAgeMs: 60_000, maxBytes: 1e9 }, { claimGraceMs: 3_600_000 });
    await young.sweep();
    await young.close();
    expect(existsSync(join(path, CLAIM))).toBe(true);
    const warnings: string[] = [];
    const old = await openWithHooks(
      { root, minAgeMs: 60_000, maxBytes: 1e9, cleanOnOpen: false, onWarning: (m) => warnings.push(m) },
      { claimGraceMs: 0 },
    );
    expect((await old.sweep()).totalBytes).toBe(0);
    await old.close();
    expect(existsSync(sentinelOf(path))).toBe(true);
    expect(statSync(join(path, "data")).size).toBe(1000);
    expect(warnings).toEqual(["gave back an entry whose eviction was interrupted"]);
  });
});
