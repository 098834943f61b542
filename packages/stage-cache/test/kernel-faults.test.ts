// ENOSPC from a real kernel: the cache root is a tiny tmpfs mounted for the test. Needs root (mount); on a
// machine that cannot mount, the test is skipped and says why. The mount helpers are shared with cas.
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { kernelDescribe, mountTmpfs, unmount } from "@cas-stage/test-support/kernel";
import { afterEach, expect, it } from "vitest";
import { StageCache } from "../src/index.js";
import { tempDir, writeTree } from "./fixtures.js";

const mounted: string[] = [];
afterEach(() => {
  for (const dir of mounted.splice(0)) unmount(dir);
});

kernelDescribe("mountTmpfs", "a full filesystem", () => {
  it("fails a stage with ENOSPC, leaves no temp and no slot, and the same cache works once space is freed", async () => {
    const root = tempDir("tmpfs-root");
    mountTmpfs(root, "1m");
    mounted.push(root);
    const files: Record<string, string> = {};
    for (let i = 0; i < 20; i++) files[`d${i % 4}/f${i}.txt`] = "x".repeat(20_000);
    const source = writeTree(tempDir("src"), files); // about 400 KB
    const cache = await StageCache.open({ root });
    const blocker = join(root, "blocker");
    writeFileSync(blocker, Buffer.alloc(800 * 1024)); // leaves less room than the tree needs

    const error = await cache.stage(source, "fills-the-disk").catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "StageCacheError", code: "ENOSPC" });
    expect((error as Error).message).toMatch(/no space left on device/i);
    expect(readdirSync(join(root, ".staging"))).toEqual([]);
    expect(readdirSync(root).sort()).toEqual([".scratch", ".staging", ".trash", "blocker"]);

    rmSync(blocker);
    const path = await cache.stage(source, "fills-the-disk");
    expect(readdirSync(join(path, "d0")).length).toBe(5);
    await cache.close();
  });
});
