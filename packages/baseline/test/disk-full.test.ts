// ENOSPC from a real kernel: the cache root is a tiny tmpfs mounted for the test. Needs root (mount); on a
// machine that cannot mount, the test is skipped and says why. The mount helpers are shared with cas.
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { kernelDescribe, mountTmpfs, unmount } from "@cas-stage/test-support/kernel";
import { afterEach, expect, it } from "vitest";
import { materializeBaseline } from "../src/index.js";
import { cacheNames, gitRepo, makeTempDir, removeTempDirs } from "./fixtures.js";

const mounted: string[] = [];
afterEach(() => {
  for (const dir of mounted.splice(0)) unmount(dir);
  removeTempDirs();
});

kernelDescribe("mountTmpfs", "a full filesystem", () => {
  it("fails with ENOSPC naming the file, leaves no slot or staging dir, and works once space is freed", async () => {
    const repo = gitRepo();
    for (let i = 0; i < 20; i++) repo.write(`dir${i % 4}/file${i}.txt`, `${i}`.repeat(20_000));
    const commit = repo.commit("about 400 KB of files");
    const cacheRoot = makeTempDir("tmpfs-cache");
    mountTmpfs(cacheRoot, "1m");
    mounted.push(cacheRoot);
    const blocker = join(cacheRoot, "blocker");
    writeFileSync(blocker, Buffer.alloc(800 * 1024));

    const error = await materializeBaseline({ path: repo.dir, base: commit, cacheRoot }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ name: "BaselineError", code: "ENOSPC" });
    expect((error as Error).message).toMatch(
      /^cannot write dir\d\/file\d+\.txt: ENOSPC: no space left on device.*; free space on that filesystem/,
    );
    expect(cacheNames(cacheRoot)).toEqual([]);

    rmSync(blocker);
    const result = await materializeBaseline({ path: repo.dir, base: commit, cacheRoot });
    expect(result.cache).toBe("built");
    expect(readdirSync(join(result.dir, "dir0")).length).toBe(5);
  });
});
