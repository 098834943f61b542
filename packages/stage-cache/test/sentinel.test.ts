import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fingerprintTree, STAGE_COMPLETE_SENTINEL, StageCache } from "../src/index.js";
import { ManifestError, readRecordedManifest, readSentinelHeader } from "../src/sentinel.js";
import { tempDir, writeTree } from "./fixtures.js";

function manyFiles(count: number): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < count; i++) files[`dir-${i % 20}/a-rather-long-file-name-${i}.txt`] = `${i}\n`;
  return files;
}

describe("the sentinel", () => {
  it("starts with a JSON header line: totals, the tree digest, and the manifest's sha256", async () => {
    const source = writeTree(tempDir("src"), manyFiles(500));
    const cache = await StageCache.open({ root: join(tempDir("root"), "cache") });
    const slot = await cache.stage(source, "header");
    await cache.close();
    const text = readFileSync(join(slot, STAGE_COMPLETE_SENTINEL), "utf8");
    const [first, ...rest] = text.split("\n");
    expect(JSON.parse(first as string)).toEqual({
      version: 2,
      files: 500,
      bytes: expect.any(Number),
      format: "cas-stage-tree-v2",
      digest: await fingerprintTree(source),
      manifest: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(rest).toHaveLength(500 + 20 + 1);
    expect(await readSentinelHeader(join(slot, STAGE_COMPLETE_SENTINEL))).toEqual(
      JSON.parse(first as string),
    );
  });

  it("gives eviction the size its header records, for this version and the previous one", async () => {
    const root = join(tempDir("root"), "cache");
    const builder = await StageCache.open({ root });
    const big = await builder.stage(writeTree(tempDir("src"), manyFiles(300)), "current");
    const old = await builder.stage(writeTree(tempDir("src"), { "x.txt": "x" }), "previous");
    await builder.close();
    // Sizes that differ from what measuring the slots would give: only the headers can be their source.
    const sentinel = join(big, STAGE_COMPLETE_SENTINEL);
    const [header, ...manifest] = readFileSync(sentinel, "utf8").split("\n");
    writeFileSync(
      sentinel,
      [JSON.stringify({ ...JSON.parse(header as string), bytes: 123_456 }), ...manifest].join("\n"),
    );
    writeFileSync(
      join(old, STAGE_COMPLETE_SENTINEL),
      `${JSON.stringify({ version: 1, files: 1, bytes: 777 })}\n`,
    );
    // A fresh cache object, so that no size is memoized yet.
    const cache = await StageCache.open({ root, maxBytes: 1, minAgeMs: 60_000 });
    expect((await cache.sweep()).totalBytes).toBe(123_456 + 777);
    await cache.close();
  });

  it("reads no further than the first 4 KiB for the header", async () => {
    const path = join(tempDir("sentinel"), STAGE_COMPLETE_SENTINEL);
    writeFileSync(path, `{"version":2,"bytes":5}\n${"x".repeat(100_000)}`);
    expect(await readSentinelHeader(path)).toEqual({ version: 2, bytes: 5 });
    writeFileSync(path, `{"bytes":${" ".repeat(5000)}5}\n`);
    expect(await readSentinelHeader(path)).toBeNull();
    writeFileSync(path, "not json");
    expect(await readSentinelHeader(path)).toBeNull();
    writeFileSync(path, "[1,2]");
    expect(await readSentinelHeader(path)).toBeNull();
    await expect(readSentinelHeader(join(tempDir("none"), "missing"))).rejects.toMatchObject({
      code: "ENOENT",
    });
  });

  it("gives null for a first line that is JSON but no object", async () => {
    const path = join(tempDir("sentinel"), STAGE_COMPLETE_SENTINEL);
    for (const line of ["5", "null", '"text"', "true"]) {
      writeFileSync(path, `${line}\nmore`);
      expect(await readSentinelHeader(path), line).toBeNull();
    }
  });

  it("closes the file it read the header from", async () => {
    const path = join(tempDir("sentinel"), STAGE_COMPLETE_SENTINEL);
    writeFileSync(path, '{"version":2,"bytes":5}\n');
    const open = () => readdirSync("/proc/self/fd").length;
    const before = open();
    for (let i = 0; i < 50; i++) await readSentinelHeader(path);
    // Some slack for whatever else the test process opens meanwhile; 50 leaked handles stand out.
    expect(open()).toBeLessThan(before + 10);
  });
});

describe("the manifest recorded in a sentinel", () => {
  /** The sentinel of a real entry, as its header object and the text after its first line. */
  async function recorded(): Promise<{ path: string; header: Record<string, unknown>; body: string }> {
    const cache = await StageCache.open({ root: join(tempDir("root"), "cache") });
    const slot = await cache.stage(writeTree(tempDir("src"), { "a.txt": "a", "d/b.txt": "bb" }), "fp");
    await cache.close();
    const path = join(slot, STAGE_COMPLETE_SENTINEL);
    const text = readFileSync(path, "utf8");
    const newline = text.indexOf("\n");
    return { path, header: JSON.parse(text.slice(0, newline)), body: text.slice(newline + 1) };
  }

  it("is read back whole from the sentinel a stage wrote", async () => {
    const { path, header } = await recorded();
    const { entries, header: read } = await readRecordedManifest(path);
    expect(read).toEqual(header);
    expect(entries.map((e) => `${e.kind} ${e.rel}`)).toEqual(["file a.txt", "dir d", "file d/b.txt"]);
  });

  for (const [what, change] of [
    ["an older version", (h: Record<string, unknown>) => ({ ...h, version: 1 })],
    ["another digest format", (h: Record<string, unknown>) => ({ ...h, format: "other-format" })],
    ["no manifest hash", (h: Record<string, unknown>) => ({ ...h, manifest: undefined })],
  ] as const) {
    it(`is refused as absent for a header of ${what}, even when the rest checks out`, async () => {
      const { path, header, body } = await recorded();
      writeFileSync(path, `${JSON.stringify(change(header))}\n${body}`);
      await expect(readRecordedManifest(path)).rejects.toThrow(
        new ManifestError("the sentinel records no manifest (written by an older version or another writer)"),
      );
    });
  }

  for (const [what, text] of [
    ["a foreign marker", (_h: string, body: string) => `done\n${body}`],
    ["an empty first line", (h: string) => `\n${h}`],
  ] as const) {
    it(`is refused as absent for a sentinel with ${what}`, async () => {
      const { path, header, body } = await recorded();
      writeFileSync(path, text(JSON.stringify(header), body));
      await expect(readRecordedManifest(path)).rejects.toThrow(/^the sentinel records no manifest/);
    });
  }

  it("is refused as damaged for a header line without the manifest after it", async () => {
    const { path, header } = await recorded();
    writeFileSync(path, JSON.stringify(header));
    await expect(readRecordedManifest(path)).rejects.toThrow(
      new ManifestError("the recorded manifest is damaged"),
    );
  });

  it("is refused as damaged when its text matches its hash but is no manifest", async () => {
    const { path, header } = await recorded();
    const body = "not a manifest line\n";
    const manifest = createHash("sha256").update(body).digest("hex");
    writeFileSync(path, `${JSON.stringify({ ...header, manifest })}\n${body}`);
    const error = await readRecordedManifest(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ManifestError);
    expect((error as Error).message).toMatch(/^the recorded manifest is damaged: ./);
  });
});
