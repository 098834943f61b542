import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { StageCache } from "../src/index.js";
import { tempDir, writeTree } from "./fixtures.js";

function manyFiles(count: number): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < count; i++) files[`d${i % 40}/f${i}.txt`] = `file ${i}\n`;
  return files;
}

describe("a source that changes during a stage", () => {
  it("fails with ENOENT naming a vanished file, leaves nothing behind, and stages once the source is back", async () => {
    const files = manyFiles(5000);
    const source = writeTree(tempDir("src"), files);
    const root = join(tempDir("root"), "cache");
    const cache = await StageCache.open({ root });
    let removed = false;
    // The source disappears (a real unlink, not a mock) as soon as the first file has been copied, while
    // thousands are still to be walked or copied.
    const error = await cache
      .stage(source, "vanishing", {
        onProgress: () => {
          if (removed) return;
          removed = true;
          rmSync(source, { recursive: true, force: true });
        },
      })
      .catch((e: unknown) => e);
    expect(removed).toBe(true);
    expect(error).toMatchObject({ name: "StageCacheError", code: "ENOENT" });
    expect((error as Error).message).toContain(source);
    expect((error as Error).message).toMatch(/disappeared while being copied|no such file or directory/);
    expect(existsSync(join(root, "va"))).toBe(false);
    expect(readdirSync(join(root, ".staging"))).toEqual([]);

    writeTree(source, files);
    const path = await cache.stage(source, "vanishing");
    expect(readdirSync(join(path, "d0")).length).toBe(125);
    await cache.close();
  });
});
