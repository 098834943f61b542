// publishSlot on its own, with a writeTree the test controls: what it does with a slot that appeared after
// the miss, with the cache's failures and with an abort (see MUTATION.md).
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chattr, kernelTest } from "@cas-stage/test-support/kernel";
import { afterEach, describe, expect, it } from "vitest";
import { BaselineError } from "../src/index.js";
import { baselinesDir, MANIFEST, SENTINEL, slotPath, stagingDir } from "../src/layout.js";
import { publishSlot } from "../src/publish.js";
import { WRITABLE_HINT } from "../src/store.js";
import type { WrittenTree } from "../src/write-tree.js";
import { makeTempDir, removeTempDirs } from "./fixtures.js";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  removeTempDirs();
});

const commit = "c".repeat(40);

/** A writeTree that writes one file and the `.git` marker, counting its calls. */
function oneFileTree() {
  const calls: string[] = [];
  const writeTree = async (target: string): Promise<WrittenTree> => {
    calls.push(target);
    mkdirSync(join(target, ".git"), { recursive: true });
    writeFileSync(join(target, "file.txt"), "content");
    // The manifest is written as given: these tests do not read it.
    return { files: 1, bytes: "content".length, index: Buffer.from("an index") };
  };
  return { calls, writeTree };
}

describe("publishSlot", () => {
  kernelTest(
    "chattr",
    "returns a slot that appeared after the miss as a hit, writing nothing, even in a cache it cannot write",
    async () => {
      const cacheRoot = makeTempDir("cache");
      const first = oneFileTree();
      expect((await publishSlot({ cacheRoot, commit, writeTree: first.writeTree })).outcome).toBe("built");
      chattr("+i", baselinesDir(cacheRoot));
      cleanups.push(() => chattr("-i", baselinesDir(cacheRoot)));
      const second = oneFileTree();
      await expect(publishSlot({ cacheRoot, commit, writeTree: second.writeTree })).resolves.toEqual({
        dir: slotPath(cacheRoot, commit),
        outcome: "hit",
      });
      expect(second.calls).toEqual([]);
    },
  );

  kernelTest(
    "chattr",
    "reports a staging dir it cannot make a temp dir in as the cache's error, naming the step, with the hint",
    async () => {
      const cacheRoot = makeTempDir("cache");
      mkdirSync(stagingDir(cacheRoot), { recursive: true });
      chattr("+i", stagingDir(cacheRoot));
      cleanups.push(() => chattr("-i", stagingDir(cacheRoot)));
      const tree = oneFileTree();
      const error = await publishSlot({ cacheRoot, commit, writeTree: tree.writeTree }).catch(
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(BaselineError);
      expect(error).toMatchObject({ code: "EPERM" });
      expect((error as Error).message).toMatch(/baseline staging/);
      expect((error as Error).message).toContain(WRITABLE_HINT);
      expect(tree.calls).toEqual([]);
      expect(existsSync(slotPath(cacheRoot, commit))).toBe(false);
    },
  );

  it("reports a sentinel it cannot touch as the cache's error and leaves the slot as it is", async () => {
    const cacheRoot = makeTempDir("cache");
    const slot = slotPath(cacheRoot, commit);
    mkdirSync(join(slot, ".git"), { recursive: true });
    writeFileSync(join(slot, "file.txt"), "content");
    // A symlink loop: utimes fails with ELOOP, which is neither a miss nor a permission.
    symlinkSync(SENTINEL.slice(".git/".length), join(slot, SENTINEL));
    const tree = oneFileTree();
    const error = await publishSlot({ cacheRoot, commit, writeTree: tree.writeTree }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(BaselineError);
    expect(error).toMatchObject({ code: "ELOOP" });
    expect(tree.calls).toEqual([]);
    expect(readdirSync(slot).sort()).toEqual([".git", "file.txt"]);
  });

  it("never writes the manifest over a file the tree put in its place, and leaves nothing behind", async () => {
    const cacheRoot = makeTempDir("cache");
    const writeTree = async (target: string): Promise<WrittenTree> => {
      mkdirSync(join(target, ".git"), { recursive: true });
      writeFileSync(join(target, MANIFEST), "the tree's own file");
      return { files: 0, bytes: 0, index: Buffer.alloc(0) };
    };
    await expect(publishSlot({ cacheRoot, commit, writeTree })).rejects.toMatchObject({
      name: "BaselineError",
      code: "EEXIST",
    });
    expect(existsSync(slotPath(cacheRoot, commit))).toBe(false);
    expect(readdirSync(stagingDir(cacheRoot))).toEqual([]);
  });

  it("reports a filesystem error of the build as the cache's error even when the signal was aborted meanwhile", async () => {
    const cacheRoot = makeTempDir("cache");
    const controller = new AbortController();
    const failure = Object.assign(new Error("EIO: i/o error, write"), { code: "EIO" });
    const writeTree = async (): Promise<WrittenTree> => {
      controller.abort(new Error("stopped"));
      throw failure;
    };
    const error = await publishSlot({ cacheRoot, commit, writeTree, signal: controller.signal }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(BaselineError);
    expect(error).toMatchObject({ code: "EIO", cause: failure });
    expect(existsSync(slotPath(cacheRoot, commit))).toBe(false);
    expect(readdirSync(stagingDir(cacheRoot))).toEqual([]);
  });

  it("throws the signal's reason as it is when aborted during the build, leaving nothing behind", async () => {
    const cacheRoot = makeTempDir("cache");
    const controller = new AbortController();
    const reason = Object.assign(new Error("stopped by the caller"), { code: "ECANCELED" });
    const writeTree = async (target: string): Promise<WrittenTree> => {
      writeFileSync(join(target, "partial"), "x");
      controller.abort(reason);
      throw reason;
    };
    await expect(publishSlot({ cacheRoot, commit, writeTree, signal: controller.signal })).rejects.toBe(
      reason,
    );
    expect(existsSync(slotPath(cacheRoot, commit))).toBe(false);
    expect(readdirSync(stagingDir(cacheRoot))).toEqual([]);
  });

  it("publishes the tree with its sentinel last and its manifest in the marker", async () => {
    const cacheRoot = makeTempDir("cache");
    const tree = oneFileTree();
    const { dir, outcome } = await publishSlot({ cacheRoot, commit, writeTree: tree.writeTree });
    expect(outcome).toBe("built");
    expect(tree.calls).toHaveLength(1);
    expect(tree.calls[0]?.startsWith(stagingDir(cacheRoot))).toBe(true);
    expect(existsSync(join(dir, SENTINEL))).toBe(true);
    expect(existsSync(join(dir, MANIFEST))).toBe(true);
    expect(existsSync(join(dir, "file.txt"))).toBe(true);
  });
});
