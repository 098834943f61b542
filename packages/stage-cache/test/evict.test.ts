import { existsSync, mkdirSync, readdirSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { STAGE_COMPLETE_SENTINEL, StageCache } from "../src/index.js";
import { tempDir, writeTree } from "./fixtures.js";

/** An entry's last use is its sentinel's mtime. */
function sentinelOf(slot: string): string {
  return join(slot, STAGE_COMPLETE_SENTINEL);
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

describe("eviction", () => {
  it("removes complete entries oldest-used first until the total is at most maxBytes", async () => {
    const root = join(tempDir("root"), "cache");
    const paths = await agedEntries(root, 5);
    const cache = await StageCache.open({ root, maxBytes: 2500, minAgeMs: 60_000 });
    const result = await cache.sweep();
    // entry-4 is the oldest, then entry-3 and entry-2.
    expect(result).toEqual({ removed: [paths[4], paths[3], paths[2]], freedBytes: 3000, totalBytes: 2000 });
    expect(existsSync(paths[1] as string)).toBe(true);
    expect(existsSync(paths[2] as string)).toBe(false);
    expect(readdirSync(join(root, ".trash"))).toEqual([]);
    await cache.close();
  });

  it("never removes an entry used within minAgeMs", async () => {
    const root = join(tempDir("root"), "cache");
    const [recent, old] = await agedEntries(root, 2);
    const cache = await StageCache.open({ root, maxBytes: 1, minAgeMs: 60_000 });
    const now = new Date();
    utimesSync(sentinelOf(recent as string), now, now);
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
    expect(result).toEqual({ removed: [path], freedBytes: 1000, totalBytes: 0 });
    expect(existsSync(join(root, "en"))).toBe(false);
    expect(existsSync(foreign)).toBe(true);
    await cache.close();
  });

  it("reports the total without removing anything when maxBytes is not set", async () => {
    const root = join(tempDir("root"), "cache");
    await agedEntries(root, 3);
    const cache = await StageCache.open({ root, minAgeMs: 0 });
    expect(await cache.sweep()).toEqual({ removed: [], freedBytes: 0, totalBytes: 3000 });
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

  it("reports sweep failures through onWarning, never as unhandled rejections", async () => {
    const root = join(tempDir("root"), "cache");
    const warnings: string[] = [];
    await agedEntries(root, 1);
    const cache = await StageCache.open({
      root,
      maxBytes: 1,
      minAgeMs: 0,
      onWarning: (m) => warnings.push(m),
    });
    // A fan-out directory that cannot be listed (a file where a directory should be is skipped, so use
    // a directory whose slot vanished into an unreadable state): make the trash dir a file so renames fail.
    const { rmSync, writeFileSync } = await import("node:fs");
    rmSync(join(root, ".trash"), { recursive: true });
    writeFileSync(join(root, ".trash"), "");
    await cache.stage(writeTree(tempDir("src"), { data: "x" }), "trigger");
    await cache.close();
    expect(warnings.some((message) => message.startsWith("eviction failed:"))).toBe(true);
  });

  it("leaves a slot that was touched between listing and removal", async () => {
    const root = join(tempDir("root"), "cache");
    const [path] = await agedEntries(root, 1);
    const cache = await StageCache.open({ root, maxBytes: 1, minAgeMs: 60_000 });
    mkdirSync(join(root, "zz"));
    const sentinel = sentinelOf(path as string);
    const before = statSync(sentinel).mtimeMs;
    // A peer's hit: the entry is now recent, so the pass must keep it.
    const now = new Date();
    utimesSync(sentinel, now, now);
    expect(statSync(sentinel).mtimeMs).not.toBe(before);
    expect((await cache.sweep()).removed).toEqual([]);
    expect(existsSync(path as string)).toBe(true);
    await cache.close();
  });
});
