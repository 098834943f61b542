import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { StageCache } from "../src/index.js";
import { readTree, tempDir, writeTree } from "./fixtures.js";
import { isRoot, NOBODY, stageOnce as stageInChild } from "./processes.js";

async function stageOnce(source: string, options: Parameters<typeof StageCache.open>[0] = {}) {
  const cache = await StageCache.open({ root: join(tempDir("root"), "cache"), ...options });
  const path = await cache.stage(source, "rules");
  await cache.close();
  return path;
}

describe("what a stage copies", () => {
  it("copies directories, exact bytes and permission bits, and keeps dotfiles", async () => {
    const source = writeTree(tempDir("src"), {
      ".dotfile": "kept",
      "exec.sh": ["#!/bin/sh\n", 0o750],
      "ro.txt": ["read only", 0o444],
      "bin.dat": Buffer.from([0, 1, 2, 255, 254, 0]),
    });
    mkdirSync(join(source, "empty-dir"));
    const path = await stageOnce(source);
    expect(readTree(path, { withModes: true, skipSentinel: true })).toEqual(
      readTree(source, { withModes: true }),
    );
    expect(statSync(join(path, "exec.sh")).mode & 0o777).toBe(0o750);
    expect(readFileSync(join(path, "bin.dat"))).toEqual(Buffer.from([0, 1, 2, 255, 254, 0]));
    expect(existsSync(join(path, "empty-dir"))).toBe(true);
  });

  it("skips every dot-directory and every node_modules directory, at any depth", async () => {
    const source = writeTree(tempDir("src"), {
      ".git/HEAD": "x",
      ".cache/x": "x",
      "node_modules/pkg/index.js": "x",
      "a/node_modules/pkg/index.js": "x",
      "a/.hidden/secret": "x",
      "a/kept.txt": "kept",
    });
    const path = await stageOnce(source);
    expect(readTree(path, { skipSentinel: true })).toEqual({ "a/": "dir", "a/kept.txt": expect.any(String) });
  });

  it("dereferences symlinks to files inside the root and skips links to dirs, dangling links, FIFOs and sockets", async () => {
    const source = writeTree(tempDir("src"), { "real/target.txt": "target", "file.txt": "f" });
    symlinkSync("real/target.txt", join(source, "link-to-file"));
    symlinkSync("real", join(source, "link-to-dir"));
    symlinkSync("nowhere", join(source, "dangling"));
    execFileSync("mkfifo", [join(source, "fifo")]);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(source, "socket"), resolve));
    try {
      const path = await stageOnce(source);
      expect(readFileSync(join(path, "link-to-file"), "utf8")).toBe("target");
      expect(statSync(join(path, "link-to-file")).isFile()).toBe(true);
      expect(Object.keys(readTree(path, { skipSentinel: true })).sort()).toEqual([
        "file.txt",
        "link-to-file",
        "real/",
        "real/target.txt",
      ]);
    } finally {
      server.close();
    }
  });

  it("skips a symlink to a file outside the root and warns, unless followExternalSymlinks", async () => {
    const outside = writeTree(tempDir("outside"), { id_rsa: "PRIVATE" });
    const source = writeTree(tempDir("src"), { "ok.txt": "ok" });
    symlinkSync(join(outside, "id_rsa"), join(source, "stolen"));
    symlinkSync("../", join(source, "parent-dir"));
    const warnings: [string, string][] = [];
    const path = await stageOnce(source, { onWarning: (message, at) => warnings.push([message, at]) });
    expect(existsSync(join(path, "stolen"))).toBe(false);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.[0]).toMatch(
      /skipped symlink stolen: its target .*id_rsa is outside the source root/,
    );
    expect(warnings[0]?.[1]).toBe(join(source, "stolen"));

    const followed = await stageOnce(source, { followExternalSymlinks: true });
    expect(readFileSync(join(followed, "stolen"), "utf8")).toBe("PRIVATE");
  });

  it("does not hang on symlink loops", async () => {
    const source = writeTree(tempDir("src"), { "a/file": "x" });
    symlinkSync("..", join(source, "a", "up"));
    symlinkSync("self", join(source, "self"));
    symlinkSync("loop-b", join(source, "loop-a"));
    symlinkSync("loop-a", join(source, "loop-b"));
    const path = await stageOnce(source);
    expect(Object.keys(readTree(path, { skipSentinel: true })).sort()).toEqual(["a/", "a/file"]);
  });

  it("fails on an unreadable file with EACCES, naming it, and leaves nothing behind", async () => {
    const source = writeTree(tempDir("src"), { "ok.txt": "ok", "secret.txt": ["x", 0o000] });
    const root = join(tempDir("root"), "cache");
    // Root reads anything, so as root the stage runs in a child process as the unprivileged user nobody:
    // the kernel's own EACCES either way, not a mock.
    const outcome = isRoot ? await stageAsNobody(source, root) : await stageHere(source, root);
    expect(outcome).toMatchObject({ code: "EACCES", path: join(source, "secret.txt") });
    expect(outcome.message).toMatch(/cannot copy .*secret\.txt: .*make the file readable/);
    expect(existsSync(join(root, "un"))).toBe(false);
    expect(readdirSync(join(root, ".staging"))).toEqual([]);
  });
});

interface StageFailure {
  code?: string;
  path?: string;
  message: string;
}

async function stageHere(source: string, root: string): Promise<StageFailure> {
  const cache = await StageCache.open({ root });
  try {
    await cache.stage(source, "unreadable");
    return { message: "staged" };
  } catch (error) {
    const { code, path, message } = error as StageFailure;
    return { code, path, message };
  } finally {
    await cache.close();
  }
}

async function stageAsNobody(source: string, root: string): Promise<StageFailure> {
  // Only the test's own temp dirs are opened up to nobody; the unreadable file stays unreadable.
  for (const dir of [source, dirname(root)]) chmodSync(dir, 0o777);
  const { error, path } = await stageInChild({ root, source, fingerprint: "unreadable" }, { user: NOBODY });
  return error ?? { message: `staged ${path}` };
}
