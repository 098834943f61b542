// One file's copy from an open descriptor: never over an existing file or through a symlink, the bytes the
// descriptor still has, large files a slice at a time with an abort honoured in between.
import { closeSync, fstatSync, openSync, readFileSync, symlinkSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bytePathOfText } from "../src/byte-path.js";
import { contentHash } from "../src/content-hash.js";
import { copyTree } from "../src/copy.js";
import type { FileContent } from "../src/file-content.js";
import { copyFileContent } from "../src/file-copy.js";
import { tempDir, writeTree } from "./fixtures.js";

/** Copies `path` to `target` as the walk would hand it over: an open descriptor and its fstat. */
function copyOpen(path: string, target: string, signal?: AbortSignal, beforeCopy?: () => void) {
  const fd = openSync(path, "r");
  const file = { fd, stats: fstatSync(fd), path: bytePathOfText(path) };
  beforeCopy?.();
  return new Promise<FileContent>((resolve, reject) => {
    copyFileContent(file, bytePathOfText(target), signal, (error, content) => {
      closeSync(fd);
      if (error !== undefined || content === undefined) reject(error);
      else resolve(content);
    });
  });
}

describe("copyFileContent", () => {
  it("never writes over an existing file, nor through a symlink planted at the target", async () => {
    const dir = writeTree(tempDir("files"), { source: "new bytes", existing: "old bytes", victim: "victim" });
    await expect(copyOpen(join(dir, "source"), join(dir, "existing"))).rejects.toMatchObject({
      name: "StageCacheError",
      code: "EEXIST",
      path: join(dir, "existing"),
    });
    expect(readFileSync(join(dir, "existing"), "utf8")).toBe("old bytes");
    symlinkSync(join(dir, "victim"), join(dir, "planted"));
    await expect(copyOpen(join(dir, "source"), join(dir, "planted"))).rejects.toMatchObject({
      code: "EEXIST",
    });
    expect(readFileSync(join(dir, "victim"), "utf8")).toBe("victim");
  });

  it("copies and hashes the bytes the descriptor has, also when the file shrank since it was opened", async () => {
    const dir = writeTree(tempDir("files"), { source: Buffer.alloc(200_000, 3) });
    const content = await copyOpen(join(dir, "source"), join(dir, "copy"), undefined, () =>
      truncateSync(join(dir, "source"), 70_000),
    );
    expect(content.size).toBe(70_000);
    expect(readFileSync(join(dir, "copy")).equals(Buffer.alloc(70_000, 3))).toBe(true);
    expect(content.hash).toBe(contentHash(Buffer.alloc(70_000, 3)));
  });

  it("copies a large file a slice at a time, and stops between slices when the signal aborts", async () => {
    const big = Buffer.alloc(96 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big[i] = (i >> 12) & 255;
    const dir = writeTree(tempDir("files"), { big });
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    const content = await copyOpen(join(dir, "big"), join(dir, "copy"));
    clearInterval(ticker);
    expect(turns).toBeGreaterThan(0);
    expect(content.hash).toBe(contentHash(big));
    expect(readFileSync(join(dir, "copy")).equals(big)).toBe(true);

    const controller = new AbortController();
    setImmediate(() => controller.abort(new Error("stop now")));
    await expect(copyOpen(join(dir, "big"), join(dir, "aborted"), controller.signal)).rejects.toThrow(
      "stop now",
    );
  });
});

describe("copyTree", () => {
  it("fails with what onProgress throws", async () => {
    const source = writeTree(tempDir("src"), { a: "a", b: "b" });
    await expect(
      copyTree(source, tempDir("copy"), {
        onProgress: () => {
          throw new Error("progress failed");
        },
      }),
    ).rejects.toThrow("progress failed");
  });
});
