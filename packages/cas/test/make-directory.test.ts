import { mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { bindReadOnly, kernelTest, unmount } from "@cas-stage/test-support/kernel";
import { afterEach, describe, expect, it } from "vitest";
import { makeDirectory } from "../src/index.js";
import { tempDir } from "./fixtures.js";

const undo: Array<() => void> = [];
afterEach(() => {
  for (const step of undo.splice(0).reverse()) step();
});

describe("makeDirectory", () => {
  it("makes a directory and its missing parents, and accepts one that exists", async () => {
    const root = await tempDir();
    const deep = join(root, "a", "b", "c");
    await makeDirectory(deep);
    expect((await stat(deep)).isDirectory()).toBe(true);
    await makeDirectory(deep);
    await makeDirectory(root);
  });

  it("throws EEXIST when a file is in the way", async () => {
    const root = await tempDir();
    await writeFile(join(root, "file"), "");
    await expect(makeDirectory(join(root, "file"))).rejects.toMatchObject({ code: "EEXIST" });
    await expect(makeDirectory(join(root, "file", "below"))).rejects.toMatchObject({ code: "ENOTDIR" });
  });

  kernelTest(
    "bindReadOnly",
    "reports a read-only filesystem as EROFS, where recursive mkdir says ENOENT",
    async () => {
      const root = await tempDir();
      const readOnly = join(root, "ro");
      await mkdir(readOnly);
      bindReadOnly(readOnly);
      undo.push(() => unmount(readOnly));
      await expect(mkdir(join(readOnly, "a", "b"), { recursive: true })).rejects.toMatchObject({
        code: "ENOENT",
      });
      await expect(makeDirectory(join(readOnly, "a", "b"))).rejects.toMatchObject({ code: "EROFS" });
    },
  );
});
