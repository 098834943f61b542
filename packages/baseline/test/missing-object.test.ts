import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { materializeBaseline } from "../src/index.js";
import { cacheNames, gitRepo, makeTempDir, removeTempDirs, testTmpDir } from "./fixtures.js";

afterEach(removeTempDirs);

/** A repository whose HEAD names a blob that is no longer in the object store (a real, corrupt repository). */
function repoWithMissingBlob(): { dir: string; missing: string } {
  const repo = gitRepo();
  for (let i = 0; i < 50; i++) repo.write(`dir${i % 5}/file${i}.txt`, `content ${i}\n`);
  repo.write("lost.txt", "this blob will be deleted\n");
  repo.commit("with a blob to lose");
  const missing = repo.git("rev-parse", "HEAD:lost.txt");
  rmSync(join(repo.dir, ".git", "objects", missing.slice(0, 2), missing.slice(2)));
  return { dir: repo.dir, missing };
}

describe("a git object missing from the repository", () => {
  it("fails with EGIT naming the object, and leaves no temp dir when uncached", async () => {
    const { dir, missing } = repoWithMissingBlob();
    const before = readdirSync(testTmpDir);
    const error = await materializeBaseline({ path: dir, base: "HEAD" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "BaselineError", code: "EGIT" });
    expect((error as Error).message).toContain(missing);
    expect((error as Error).message).toMatch(/is the repository complete\?/);
    expect(readdirSync(testTmpDir)).toEqual(before);
  });

  it("fails with EGIT and leaves neither slot nor staging dir in the cache", async () => {
    const { dir } = repoWithMissingBlob();
    const cacheRoot = makeTempDir("cache");
    await expect(materializeBaseline({ path: dir, base: "HEAD", cacheRoot })).rejects.toMatchObject({
      code: "EGIT",
    });
    expect(existsSync(join(cacheRoot, "baselines"))).toBe(true);
    expect(cacheNames(cacheRoot)).toEqual([]);
  });
});
