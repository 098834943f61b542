import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { chattr, kernelTest } from "@cas-stage/test-support/kernel";
import { afterEach, describe, expect, it } from "vitest";
import { pathExists, removeTree, removeTreeQuietly } from "../src/index.js";
import { tempDir } from "./fixtures.js";

const undo: Array<() => void> = [];
afterEach(() => {
  for (const step of undo.splice(0).reverse()) step();
});

describe("removeTree", () => {
  it("removes a directory tree, a file, and takes a missing path as done", async () => {
    const root = await tempDir();
    await mkdir(join(root, "a", "b"), { recursive: true });
    await writeFile(join(root, "a", "b", "f"), "x");
    await writeFile(join(root, "file"), "x");
    await removeTree(join(root, "a"));
    await removeTree(join(root, "file"));
    await removeTree(join(root, "missing"));
    expect(await pathExists(join(root, "a"))).toBe(false);
    expect(await pathExists(join(root, "file"))).toBe(false);
  });

  kernelTest(
    "chattr",
    "throws the filesystem error when the tree cannot be removed; the quiet form does not",
    async () => {
      const root = await tempDir();
      const stuck = join(root, "a", "stuck");
      await mkdir(join(root, "a"));
      await writeFile(stuck, "x");
      chattr("+i", stuck);
      undo.push(() => chattr("-i", stuck));
      await expect(removeTree(join(root, "a"))).rejects.toHaveProperty("code");
      await expect(removeTreeQuietly(join(root, "a"))).resolves.toBeUndefined();
      expect(await pathExists(stuck)).toBe(true);
    },
  );
});

describe("pathExists", () => {
  it("is true for anything at the path, a dangling symlink included, and false otherwise", async () => {
    const root = await tempDir();
    await writeFile(join(root, "file"), "x");
    await symlink(join(root, "nowhere"), join(root, "dangling"));
    expect(await pathExists(root)).toBe(true);
    expect(await pathExists(join(root, "file"))).toBe(true);
    expect(await pathExists(join(root, "dangling"))).toBe(true);
    expect(await pathExists(join(root, "missing"))).toBe(false);
    expect(await pathExists(join(root, "file", "below"))).toBe(false);
  });
});
