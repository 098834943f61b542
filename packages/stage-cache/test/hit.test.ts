// hitEntry: the hit of StageCache.stage without opening the cache (the CLI's start-up path on a hit).
import { existsSync, readdirSync, renameSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hitEntry } from "../src/hit.js";
import { EVICTION_CLAIM, STAGE_COMPLETE_SENTINEL, StageCache } from "../src/index.js";
import { tempDir, writeTree } from "./fixtures.js";

const noWarning = (message: string) => {
  throw new Error(`unexpected warning: ${message}`);
};

describe("hitEntry", () => {
  it("returns the slot StageCache.stage returns, and marks it used", async () => {
    const root = join(tempDir("root"), "cache");
    const cache = await StageCache.open({ root });
    const slot = await cache.stage(writeTree(tempDir("src"), { "a.txt": "a" }), "Mixed.Case-1");
    await cache.close();
    const sentinel = join(slot, STAGE_COMPLETE_SENTINEL);
    utimesSync(sentinel, new Date(0), new Date(0));
    expect(await hitEntry(root, "Mixed.Case-1", noWarning)).toBe(slot);
    expect(statSync(sentinel).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
  });

  it("misses without creating anything: no root, no slot, no private directory", async () => {
    const root = join(tempDir("root"), "cache");
    expect(await hitEntry(root, "absent", noWarning)).toBeUndefined();
    expect(existsSync(root)).toBe(false);
  });

  it("misses on an entry an evictor has claimed", async () => {
    const root = join(tempDir("root"), "cache");
    const cache = await StageCache.open({ root });
    const slot = await cache.stage(writeTree(tempDir("src"), { "a.txt": "a" }), "claimed");
    await cache.close();
    renameSync(join(slot, STAGE_COMPLETE_SENTINEL), join(slot, EVICTION_CLAIM));
    expect(await hitEntry(root, "claimed", noWarning)).toBeUndefined();
    expect(readdirSync(slot)).toContain(EVICTION_CLAIM);
  });

  it("refuses an invalid fingerprint with the rule", async () => {
    await expect(hitEntry(tempDir("root"), "../x", noWarning)).rejects.toThrow(TypeError);
  });
});
