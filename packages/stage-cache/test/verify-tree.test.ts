import { execFileSync } from "node:child_process";
import {
  appendFileSync,
  chmodSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fingerprintTree, STAGE_COMPLETE_SENTINEL, StageCache } from "../src/index.js";
import { readRecordedManifest } from "../src/sentinel.js";
import { verifySlot } from "../src/verify-tree.js";
import { tempDir, writeTree } from "./fixtures.js";

const TREE = {
  "a.txt": "alpha",
  "b/c.txt": "charlie",
  "b/d/e.bin": Buffer.alloc(70_000, 9),
  "run.sh": ["#!/bin/sh\n", 0o755] as [string, number],
};

/** A fresh slot holding TREE, with its source. */
async function stagedSlot() {
  const source = writeTree(tempDir("src"), TREE);
  const cache = await StageCache.open({ root: join(tempDir("root"), "cache") });
  const slot = await cache.stage(source, "verify-me");
  await cache.close();
  return { source, slot };
}

describe("verifySlot", () => {
  it("finds an untouched slot whole, and its recorded digest is fingerprintTree of the source", async () => {
    const { source, slot } = await stagedSlot();
    expect(await verifySlot(slot)).toEqual({
      ok: true,
      files: 4,
      bytes: 5 + 7 + 70_000 + 10,
      digest: await fingerprintTree(source),
    });
    const { entries } = await readRecordedManifest(join(slot, STAGE_COMPLETE_SENTINEL));
    expect(entries.map((entry) => `${entry.kind} ${entry.rel.toString()}`)).toEqual([
      "file a.txt",
      "dir b",
      "file b/c.txt",
      "dir b/d",
      "file b/d/e.bin",
      "file run.sh",
    ]);
  });

  const cases: [string, (slot: string) => void, object][] = [
    [
      "a missing file",
      (slot) => unlinkSync(join(slot, "b/c.txt")),
      { path: "b/c.txt", problem: "missing", expected: "a file", found: "nothing" },
    ],
    [
      "a missing directory",
      (slot) => rmSync(join(slot, "b/d"), { recursive: true }),
      { path: "b/d", problem: "missing", expected: "a directory", found: "nothing" },
    ],
    [
      "an extra file",
      (slot) => writeFileSync(join(slot, "b/extra"), "x"),
      { path: "b/extra", problem: "extra", expected: "nothing", found: "a file" },
    ],
    [
      "an extra dot-directory",
      (slot) => mkdirSync(join(slot, ".git")),
      { path: ".git", problem: "extra", expected: "nothing", found: "a directory" },
    ],
    [
      "a file named like the sentinel below the slot's root",
      (slot) => writeFileSync(join(slot, "b/.cas-stage-complete"), "x"),
      { path: "b/.cas-stage-complete", problem: "extra", expected: "nothing", found: "a file" },
    ],
    [
      "an extra FIFO",
      (slot) => execFileSync("mkfifo", [join(slot, "b/fifo")]),
      { path: "b/fifo", problem: "extra", expected: "nothing", found: "a special file" },
    ],
    [
      "an extra symlink",
      (slot) => symlinkSync("a.txt", join(slot, "link")),
      { path: "link", problem: "extra", expected: "nothing", found: "a symlink" },
    ],
    [
      "a file replaced by a symlink to the same bytes",
      (slot) => {
        renameSync(join(slot, "a.txt"), join(slot, "b/moved"));
        symlinkSync("b/moved", join(slot, "a.txt"));
      },
      { path: "a.txt", problem: "type", expected: "a file", found: "a symlink" },
    ],
    [
      "a directory replaced by a file",
      (slot) => {
        rmSync(join(slot, "b/d"), { recursive: true });
        writeFileSync(join(slot, "b/d"), "x");
      },
      { path: "b/d", problem: "type", expected: "a directory", found: "a file" },
    ],
    [
      "a truncated file",
      (slot) => truncateSync(join(slot, "b/d/e.bin"), 65_536),
      { path: "b/d/e.bin", problem: "size", expected: "70000 bytes", found: "65536 bytes" },
    ],
    [
      "a grown file",
      (slot) => appendFileSync(join(slot, "a.txt"), "!"),
      { path: "a.txt", problem: "size", expected: "5 bytes", found: "6 bytes" },
    ],
    [
      "changed content of the same size",
      (slot) => writeFileSync(join(slot, "b/c.txt"), "CHARLIE"),
      { path: "b/c.txt", problem: "content" },
    ],
    [
      "a changed mode",
      (slot) => chmodSync(join(slot, "run.sh"), 0o700),
      { path: "run.sh", problem: "mode", expected: "0755", found: "0700" },
    ],
  ];

  it.each(cases)(
    "reports %s with the path, the problem, expected and found",
    async (_, change, difference) => {
      const { slot } = await stagedSlot();
      change(slot);
      expect(await verifySlot(slot)).toMatchObject({ ok: false, ...difference });
    },
  );

  it("reports the first differing path in byte order of paths", async () => {
    const { slot } = await stagedSlot();
    writeFileSync(join(slot, "run.sh"), "changed!!!");
    writeFileSync(join(slot, "b/c.txt"), "changed");
    unlinkSync(join(slot, "b/d/e.bin"));
    // "b/c.txt" < "b/d/e.bin" < "run.sh"
    expect(await verifySlot(slot)).toMatchObject({ ok: false, path: "b/c.txt", problem: "content" });
  });

  it("reports content changes with both content hashes", async () => {
    const { slot } = await stagedSlot();
    writeFileSync(join(slot, "a.txt"), "ALPHA");
    const result = await verifySlot(slot);
    expect(result).toMatchObject({ ok: false, problem: "content" });
    if (result.ok) return;
    expect(result.expected).toMatch(/^[0-9a-f]{64}$/);
    expect(result.found).toMatch(/^[0-9a-f]{64}$/);
    expect(result.found).not.toBe(result.expected);
  });

  it("verifies names that are not UTF-8", async () => {
    const source = writeTree(tempDir("src"), { "plain.txt": "x" });
    writeFileSync(Buffer.concat([Buffer.from(`${source}/`), Buffer.from([0x66, 0xff])]), "latin-1");
    const cache = await StageCache.open({ root: join(tempDir("root"), "cache") });
    const slot = await cache.stage(source, "bytes");
    await cache.close();
    expect(await verifySlot(slot)).toMatchObject({ ok: true, files: 2 });
    writeFileSync(Buffer.concat([Buffer.from(`${slot}/`), Buffer.from([0x66, 0xff])]), "LATIN-1");
    expect(await verifySlot(slot)).toMatchObject({ ok: false, path: "f\uFFFD", problem: "content" });
  });

  it("reports a sentinel without a manifest, or with a damaged one, as a manifest problem", async () => {
    const { slot } = await stagedSlot();
    const sentinel = join(slot, STAGE_COMPLETE_SENTINEL);
    const text = readFileSync(sentinel, "utf8");

    writeFileSync(sentinel, `${JSON.stringify({ version: 1, files: 4, bytes: 70_022 })}\n`);
    expect(await verifySlot(slot)).toMatchObject({
      ok: false,
      path: STAGE_COMPLETE_SENTINEL,
      problem: "manifest",
      found: expect.stringMatching(/records no manifest/),
    });

    writeFileSync(sentinel, text.replace("a.txt", "A.txt"));
    expect(await verifySlot(slot)).toMatchObject({
      problem: "manifest",
      found: expect.stringMatching(/damaged/),
    });

    // Consistent text, but not what its digest covers (a writer bug, or a forged header).
    const [header, ...lines] = text.split("\n");
    const body = lines.join("\n").replace(" a.txt\n", " A.txt\n");
    const { createHash } = await import("node:crypto");
    const forged = {
      ...JSON.parse(header as string),
      manifest: createHash("sha256").update(body).digest("hex"),
    };
    writeFileSync(sentinel, `${JSON.stringify(forged)}\n${body}`);
    expect(await verifySlot(slot)).toMatchObject({
      problem: "manifest",
      found: expect.stringMatching(/does not match its digest/),
    });

    writeFileSync(sentinel, `${header}\nnot a manifest line\n`);
    expect(await verifySlot(slot)).toMatchObject({ problem: "manifest" });
  });

  it("ignores the eviction claim a sentinel may be renamed to", async () => {
    const { slot } = await stagedSlot();
    writeFileSync(join(slot, ".cas-stage-evicting"), "claimed");
    expect(await verifySlot(slot)).toMatchObject({ ok: true });
  });

  it("throws ENOENT with the path for a slot without a sentinel", async () => {
    const { slot } = await stagedSlot();
    unlinkSync(join(slot, STAGE_COMPLETE_SENTINEL));
    await expect(verifySlot(slot)).rejects.toMatchObject({
      name: "StageCacheError",
      code: "ENOENT",
      path: join(slot, STAGE_COMPLETE_SENTINEL),
    });
  });
});
