// What a copy writes, byte for byte and bit for bit: names that are not UTF-8, permission bits without
// setuid/setgid/sticky, holes of sparse files, and clear errors when a directory cannot be created.
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { fingerprintTree, StageCache } from "../src/index.js";
import { verifySlot } from "../src/verify-tree.js";
import { residentBytes, tempDir, writeTree } from "./fixtures.js";

async function stageOnce(source: string, root = join(tempDir("root"), "cache")) {
  const cache = await StageCache.open({ root });
  try {
    return await cache.stage(source, "fidelity");
  } finally {
    await cache.close();
  }
}

const isRoot = process.getuid?.() === 0;

describe("permission bits of a copy", () => {
  it.runIf(isRoot)(
    "strips setuid, setgid and sticky bits and keeps the rest (as cp without -p)",
    async () => {
      const source = writeTree(tempDir("src"), {
        "suid-tool": ["#!/bin/sh\n", 0o755],
        "sgid-tool": ["#!/bin/sh\n", 0o755],
        "sticky-file": ["x", 0o755],
        "group-exec": ["x", 0o710],
      });
      // A file of nobody: chown clears set-id bits, so they are set afterwards.
      chownSync(join(source, "suid-tool"), 65534, 65534);
      chmodSync(join(source, "suid-tool"), 0o4755);
      chmodSync(join(source, "sgid-tool"), 0o2755);
      chmodSync(join(source, "sticky-file"), 0o1755);
      expect(statSync(join(source, "suid-tool")).mode & 0o7777).toBe(0o4755);

      const path = await stageOnce(source);
      const modeOf = (name: string) => statSync(join(path, name)).mode & 0o7777;
      expect(modeOf("suid-tool")).toBe(0o755);
      expect(modeOf("sgid-tool")).toBe(0o755);
      expect(modeOf("sticky-file")).toBe(0o755);
      expect(modeOf("group-exec")).toBe(0o710);
      expect(statSync(join(path, "suid-tool")).uid).toBe(0);
    },
  );
});

describe("names that are not UTF-8", () => {
  const fileName = Buffer.from([0x66, 0xff]); // "f\xff"
  const dirName = Buffer.from([0x64, 0xfe, 0x80]); // "d\xfe\x80"

  function nonUtf8Tree(): string {
    const source = writeTree(tempDir("src"), { "plain.txt": "plain" });
    const base = Buffer.from(`${source}/`);
    writeFileSync(Buffer.concat([base, fileName]), "file with a latin-1 name");
    mkdirSync(Buffer.concat([base, dirName]));
    writeFileSync(Buffer.concat([base, dirName, Buffer.from("/inner.txt")]), "inside");
    writeFileSync(Buffer.concat([base, dirName, Buffer.from("/"), fileName]), "nested");
    return source;
  }

  it("copies a file so named with its exact name and bytes", async () => {
    const source = writeTree(tempDir("src"), { "plain.txt": "plain" });
    writeFileSync(Buffer.concat([Buffer.from(`${source}/`), fileName]), "file with a latin-1 name");
    const path = await stageOnce(source);
    const names = readdirSync(path, { encoding: "buffer" }).map((name) => name.toString("hex"));
    expect(names).toContain(fileName.toString("hex"));
    expect(readFileSync(Buffer.concat([Buffer.from(`${path}/`), fileName]), "utf8")).toBe(
      "file with a latin-1 name",
    );
  });

  it("copies files and directories so named, with their exact names and bytes", async () => {
    const source = nonUtf8Tree();
    const path = await stageOnce(source);
    const base = Buffer.from(`${path}/`);
    const names = readdirSync(base, { encoding: "buffer" }).map((name) => name.toString("hex"));
    expect(names).toEqual(expect.arrayContaining([fileName.toString("hex"), dirName.toString("hex")]));
    expect(readFileSync(Buffer.concat([base, fileName]), "utf8")).toBe("file with a latin-1 name");
    expect(readFileSync(Buffer.concat([base, dirName, Buffer.from("/inner.txt")]), "utf8")).toBe("inside");
    expect(readFileSync(Buffer.concat([base, dirName, Buffer.from("/"), fileName]), "utf8")).toBe("nested");
  });

  it("copies from and into places whose own paths are not ASCII, with the manifest the copy read", async () => {
    const source = writeTree(join(tempDir("src"), "quelle-ü-名"), { "é/ß.txt": "umlaut", plain: "p" });
    const path = await stageOnce(source, join(tempDir("root"), "cache-ü-名"));
    expect(readFileSync(join(path, "é/ß.txt"), "utf8")).toBe("umlaut");
    expect(await verifySlot(path)).toMatchObject({
      ok: true,
      files: 2,
      digest: await fingerprintTree(source),
    });
  });

  it("includes them in fingerprintTree", async () => {
    const source = nonUtf8Tree();
    const before = await fingerprintTree(source);
    writeFileSync(Buffer.concat([Buffer.from(`${source}/`), dirName, Buffer.from("/"), fileName]), "changed");
    expect(await fingerprintTree(source)).not.toBe(before);
    writeFileSync(Buffer.concat([Buffer.from(`${source}/`), fileName]), "changed too");
    const third = await fingerprintTree(source);
    expect(third).not.toBe(before);
    mkdirSync(Buffer.concat([Buffer.from(`${source}/`), Buffer.from([0x65, 0xff])]));
    expect(await fingerprintTree(source)).not.toBe(third);
  });
});

describe("sparse files", () => {
  it("copies a 3 GiB file made by truncate as a sparse file", async () => {
    const source = writeTree(tempDir("src"), { "small.txt": "small" });
    execFileSync("truncate", ["-s", "3G", join(source, "big")]);
    // A few islands of data in another sparse file: they must survive, the holes between them too.
    execFileSync("truncate", ["-s", "64M", join(source, "islands")]);
    execFileSync("dd", [
      "if=/dev/urandom",
      `of=${join(source, "islands")}`,
      "bs=4096",
      "count=3",
      "seek=5000",
      "conv=notrunc",
      "status=none",
    ]);
    const path = await stageOnce(source);

    const big = statSync(join(path, "big"));
    expect(big.size).toBe(3 * 1024 ** 3);
    expect(big.blocks * 512).toBeLessThan(1024 * 1024);
    // The holes were not read through the page cache either (3 GiB of zero pages, seconds on some VMs).
    expect(residentBytes(join(source, "big"))).toBeLessThan(1024 * 1024);
    const islands = statSync(join(path, "islands"));
    expect(islands.size).toBe(64 * 1024 ** 2);
    expect(islands.blocks * 512).toBeLessThan(4 * 1024 * 1024);
    expect(readFileSync(join(path, "islands")).equals(readFileSync(join(source, "islands")))).toBe(true);
  });
});

// A directory the copy cannot create must fail like a file that cannot be copied: a StageCacheError with
// the filesystem's code, the path, and what to do; nothing left behind.
describe("a directory that cannot be created in the copy", () => {
  const mounted: string[] = [];
  afterEach(() => {
    for (const dir of mounted.splice(0)) execFileSync("umount", ["-l", dir]);
  });

  it("fails with ENAMETOOLONG naming the directory and the remedy", async () => {
    // The source's paths stay under PATH_MAX (4096 bytes); the same tree below the cache's staging dir,
    // whose prefix is longer than the source's, does not.
    const source = tempDir("s");
    const room = 4095 - source.length - "/f".length - 8;
    const components: string[] = [];
    for (let left = room; left > 1; left -= 201) components.push("d".repeat(Math.min(200, left - 1)));
    const deepest = join(source, ...components);
    mkdirSync(deepest, { recursive: true });
    writeFileSync(join(deepest, "f"), "deep");
    const root = join(tempDir("root"), "cache");
    const cache = await StageCache.open({ root });
    const error = await cache.stage(source, "too-long").catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "StageCacheError", code: "ENAMETOOLONG" });
    expect((error as Error).message).toMatch(/cannot create directory .*ddd.*name too long.*shorter/is);
    expect(readdirSync(join(root, ".staging"))).toEqual([]);
    expect(existsSync(join(root, "to"))).toBe(false);
    await cache.close();
  });

  it.runIf(isRoot && process.platform === "linux")(
    "fails with ENOSPC when the cache filesystem runs out of inodes",
    async () => {
      const root = tempDir("inode-root");
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=8m,nr_inodes=64", "tmpfs", root]);
      mounted.push(root);
      const files: Record<string, string> = {};
      for (let i = 0; i < 100; i++) files[`dir-${i}/file`] = "x";
      const source = writeTree(tempDir("src"), files);
      const cache = await StageCache.open({ root });
      const error = await cache.stage(source, "no-inodes").catch((e: unknown) => e);
      expect(error).toMatchObject({ name: "StageCacheError", code: "ENOSPC" });
      expect((error as Error).message).toMatch(/cannot (create directory|copy) .*no space left.*inodes/is);
      expect(readdirSync(join(root, ".staging"))).toEqual([]);
      await cache.close();
    },
  );
});
