import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { StageCache } from "../src/index.js";
import { tempDir, writeTree } from "./fixtures.js";

// Tests run as root here, where chmod 000 does not stop a read. To reach the unreadable-file path anyway,
// copyFile fails with EACCES for files named "unreadable.txt", exactly as the kernel would report it.
vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  const copyFile = (src: string, dest: string, mode: number, callback: (error: Error | null) => void) => {
    if (src.endsWith("unreadable.txt")) {
      const error = Object.assign(new Error(`EACCES: permission denied, copyfile '${src}' -> '${dest}'`), {
        code: "EACCES",
      });
      setImmediate(() => callback(error));
      return;
    }
    fs.copyFile(src, dest, mode, callback);
  };
  return { ...fs, copyFile, default: { ...fs, copyFile } };
});

describe("an unreadable file", () => {
  it("fails the stage with EACCES, naming the file and what to do, and leaves nothing behind", async () => {
    const files: Record<string, string> = { "unreadable.txt": "secret" };
    for (let i = 0; i < 200; i++) files[`d${i % 10}/f${i}.txt`] = `file ${i}`;
    const source = writeTree(tempDir("src"), files);
    const root = join(tempDir("root"), "cache");
    const cache = await StageCache.open({ root });
    const error = await cache.stage(source, "unreadable").catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "EACCES",
      name: "StageCacheError",
      path: join(source, "unreadable.txt"),
    });
    expect((error as Error).message).toMatch(/cannot copy .*unreadable\.txt: .*make the file readable/);
    expect(existsSync(join(root, "un"))).toBe(false);
    expect(readdirSync(join(root, ".staging"))).toEqual([]);

    await expect(cache.stage(source)).rejects.toMatchObject({ code: "EACCES" });
    expect(readdirSync(join(root, ".scratch"))).toEqual([]);
    await cache.close();
  });
});
