// An unreadable source file, from the kernel itself: root reads anything, so as root the stages run in a
// child process as the unprivileged user nobody (spawned with its uid and gid); as any other user, here.
import { chmodSync, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { StageCache } from "../src/index.js";
import { tempDir, writeTree } from "./fixtures.js";
import { isRoot, NOBODY, type OnceResult, stageOnce } from "./processes.js";

async function stageAsUnprivileged(job: { root: string; source: string; fingerprint?: string }) {
  if (isRoot) return stageOnce(job, { user: NOBODY });
  const cache = await StageCache.open({ root: job.root });
  try {
    return { path: await cache.stage(job.source, job.fingerprint), warnings: [] } as OnceResult;
  } catch (error) {
    return { error, warnings: [] } as unknown as OnceResult;
  } finally {
    await cache.close();
  }
}

describe("an unreadable file", () => {
  it("fails the stage with EACCES, naming the file and what to do, and leaves nothing behind", async () => {
    const files: Record<string, string | [string, number]> = { "unreadable.txt": ["secret", 0o000] };
    for (let i = 0; i < 200; i++) files[`d${i % 10}/f${i}.txt`] = `file ${i}`;
    const source = writeTree(tempDir("src"), files);
    const base = tempDir("root");
    // The test's own temp dirs are opened up to the other user; the unreadable file stays unreadable.
    for (const dir of [source, base]) chmodSync(dir, 0o777);
    const root = join(base, "cache");

    for (const fingerprint of ["unreadable", undefined]) {
      const { error, path } = await stageAsUnprivileged({
        root,
        source,
        ...(fingerprint ? { fingerprint } : {}),
      });
      expect(path).toBeUndefined();
      expect(error).toMatchObject({
        code: "EACCES",
        name: "StageCacheError",
        path: join(source, "unreadable.txt"),
      });
      expect(error?.message).toMatch(/cannot copy .*unreadable\.txt: .*make the file readable/);
      expect(existsSync(join(root, "un"))).toBe(false);
      expect(readdirSync(join(root, ".staging"))).toEqual([]);
      expect(readdirSync(join(root, ".scratch"))).toEqual([]);
    }
  });
});
