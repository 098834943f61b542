import { execFileSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  cpSync,
  mkdirSync,
  openSync,
  renameSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fingerprintTree, StageCache } from "../src/index.js";
import { residentBytes, sampleTree, tempDir, writeTree } from "./fixtures.js";
import { referenceTreeDigest } from "./reference-formats.js";

describe("fingerprintTree", () => {
  it("gives identical trees in different places the same lowercase sha256 hex digest", async () => {
    const a = sampleTree(tempDir("a"));
    const b = sampleTree(tempDir("b"));
    const digest = await fingerprintTree(a);
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    expect(await fingerprintTree(b)).toBe(digest);
  });

  it("ignores mtimes and what stage does not copy", async () => {
    const a = sampleTree(tempDir("a"));
    const before = await fingerprintTree(a);
    utimesSync(join(a, "README.md"), new Date(0), new Date(0));
    writeTree(a, { ".git/HEAD": "x", "node_modules/x/y.js": "y" });
    symlinkSync("/etc/hostname", join(a, "external"));
    symlinkSync("src", join(a, "dir-link"));
    expect(await fingerprintTree(a)).toBe(before);
  });

  it("changes when a copied file's bytes, executable bit or name change, or a file or directory is added", async () => {
    const base = sampleTree(tempDir("base"));
    const digest = await fingerprintTree(base);
    const variants: ((dir: string) => void)[] = [
      (dir) => writeFileSync(join(dir, "src/a/b/c.txt"), "deep y"),
      (dir) => chmodSync(join(dir, "README.md"), 0o755),
      (dir) => renameSync(join(dir, "README.md"), join(dir, "README.txt")),
      (dir) => writeFileSync(join(dir, "new.txt"), ""),
      (dir) => mkdirSync(join(dir, "new-dir")),
      (dir) => writeFileSync(join(dir, ".env"), "SECRET=y\n"),
    ];
    const seen = new Set([digest]);
    for (const change of variants) {
      const copy = tempDir("variant");
      cpSync(base, copy, { recursive: true });
      change(copy);
      const changed = await fingerprintTree(copy);
      expect(seen.has(changed)).toBe(false);
      seen.add(changed);
    }
  });

  it("hashes exactly the tree that stage copies", async () => {
    const source = sampleTree(tempDir("src"));
    writeTree(source, { ".git/x": "x", "node_modules/y": "y" });
    symlinkSync("README.md", join(source, "readme-link"));
    const cache = await StageCache.open({ root: join(tempDir("root"), "cache") });
    const scratch = await cache.stage(source);
    expect(await fingerprintTree(scratch)).toBe(await fingerprintTree(source));
    await cache.close();
  });

  it("hashes large files streamed the same as small ones would be", async () => {
    const a = writeTree(tempDir("a"), { big: Buffer.alloc(3 * 1024 * 1024 + 17, 7) });
    const b = writeTree(tempDir("b"), { big: Buffer.alloc(3 * 1024 * 1024 + 17, 7) });
    expect(await fingerprintTree(a)).toBe(await fingerprintTree(b));
    writeFileSync(join(b, "big"), Buffer.alloc(3 * 1024 * 1024 + 17, 8));
    expect(await fingerprintTree(a)).not.toBe(await fingerprintTree(b));
  });

  it("follows the documented cas-stage-tree-v2 format: byte order of paths, names as bytes, zero chunks, empty files", async () => {
    const source = tempDir("src");
    const put = (rel: Buffer, content: Buffer, mode = 0o644) => {
      writeFileSync(Buffer.concat([Buffer.from(`${source}/`), rel]), content, { mode });
      chmodSync(Buffer.concat([Buffer.from(`${source}/`), rel]), mode);
    };
    const zerosThenData = Buffer.concat([Buffer.alloc(65536), Buffer.from("tail")]);
    const files: [Buffer, Buffer, number][] = [
      [Buffer.from("a"), Buffer.from("a"), 0o644],
      [Buffer.from("a-b"), zerosThenData, 0o755],
      // In UTF-16 order "😀" (a surrogate pair, 0xD83D…) sorts before "\uFFFD"; in byte order after.
      [Buffer.from("\uFFFD"), Buffer.from("replacement"), 0o600],
      [Buffer.from("😀"), Buffer.from("emoji"), 0o644],
      [Buffer.from([0x66, 0xff]), Buffer.from("latin-1"), 0o744],
      [Buffer.from("dir/inner"), Buffer.alloc(3), 0o644],
      // No chunks at all: the prefix and the size only.
      [Buffer.from("nothing"), Buffer.alloc(0), 0o644],
    ];
    mkdirSync(join(source, "dir"));
    mkdirSync(join(source, "empty"));
    for (const [rel, content, mode] of files) put(rel, content, mode);
    const expected = referenceTreeDigest([
      { rel: Buffer.from("dir"), dir: true },
      { rel: Buffer.from("empty"), dir: true },
      ...files.map(([rel, content, mode]) => ({ rel, content, executable: (mode & 0o100) !== 0 })),
    ]);
    expect(await fingerprintTree(source)).toBe(expected);
  });

  it("hashes a sparse file like the same bytes written out, without reading its holes as data", async () => {
    const sparse = tempDir("sparse");
    execFileSync("truncate", ["-s", "64M", join(sparse, "big")]);
    const island = Buffer.from("island");
    const fd = openSync(join(sparse, "big"), "r+");
    writeSync(fd, island, 0, island.length, 40 * 1024 * 1024 + 3);
    closeSync(fd);
    const content = Buffer.alloc(64 * 1024 * 1024);
    island.copy(content, 40 * 1024 * 1024 + 3);
    expect(statSync(join(sparse, "big")).blocks * 512).toBeLessThan(1024 * 1024);
    expect(await fingerprintTree(sparse)).toBe(
      referenceTreeDigest([{ rel: Buffer.from("big"), content, executable: false }]),
    );
    // Its holes were not read through the page cache (which would hold 64 MiB of zeros now).
    expect(residentBytes(join(sparse, "big"))).toBeLessThan(1024 * 1024);
  });

  it("reports the files and bytes hashed so far, ending with the totals a copy of the tree reports", async () => {
    const source = sampleTree(tempDir("src"));
    writeTree(source, { ".git/x": "x", "node_modules/y": "y", "empty/.keep": "" });
    const hashed: { files: number; bytes: number }[] = [];
    await fingerprintTree(source, { onProgress: (progress) => hashed.push(progress) });
    const copied: { files: number; bytes: number }[] = [];
    const cache = await StageCache.open({ root: join(tempDir("root"), "cache") });
    await cache.stage(source, "progress", { onProgress: (progress) => copied.push(progress) });
    await cache.close();
    expect(hashed.length).toBeGreaterThan(1);
    expect(hashed.map((p) => p.files)).toEqual(hashed.map((_, i) => i + 1));
    expect(hashed.at(-1)).toEqual(copied.at(-1));
    const copiedFiles = [
      "README.md",
      ".env",
      "bin/run.sh",
      "src/a/b/c.txt",
      "src/big.bin",
      "src/empty.txt",
      "empty/.keep",
    ];
    const bytes = copiedFiles.reduce((sum, rel) => sum + statSync(join(source, rel)).size, 0);
    expect(hashed.at(-1)).toEqual({ files: copiedFiles.length, bytes });
  });

  it("stops at once when aborted, rejecting with the signal's reason", async () => {
    const source = sampleTree(tempDir("src"));
    const controller = new AbortController();
    const reason = new Error("stop");
    let calls = 0;
    const hashing = fingerprintTree(source, {
      signal: controller.signal,
      onProgress: () => {
        if (++calls === 1) controller.abort(reason);
      },
    });
    await expect(hashing).rejects.toBe(reason);
    expect(calls).toBe(1);
  });

  it("rejects a missing source with ENOENT", async () => {
    await expect(fingerprintTree(join(tempDir("x"), "missing"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});
