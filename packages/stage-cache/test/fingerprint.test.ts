import { chmodSync, cpSync, mkdirSync, renameSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fingerprintTree, StageCache } from "../src/index.js";
import { sampleTree, tempDir, writeTree } from "./fixtures.js";

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

  it("rejects a missing source with ENOENT", async () => {
    await expect(fingerprintTree(join(tempDir("x"), "missing"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});
