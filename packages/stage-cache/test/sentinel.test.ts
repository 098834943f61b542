import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fingerprintTree, STAGE_COMPLETE_SENTINEL, StageCache } from "../src/index.js";
import { readSentinelHeader } from "../src/sentinel.js";
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
});
