import { mkdir, readdir, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isStageTempName, sweepStaleTemps } from "../src/index.js";
import { tempDir } from "./fixtures.js";

const HOUR = 60 * 60 * 1000;

async function ageBy(path: string, ms: number): Promise<void> {
  const when = new Date(Date.now() - ms);
  await utimes(path, when, when);
}

describe("sweepStaleTemps", () => {
  it("removes temp dirs older than the default day and returns their paths", async () => {
    const parent = await tempDir();
    const stale = join(parent, "slot.tmp.AbC123");
    await mkdir(join(stale, "deep"), { recursive: true });
    await writeFile(join(stale, "deep", "f"), "partial");
    await ageBy(stale, 25 * HOUR);
    expect(await sweepStaleTemps(parent)).toEqual([stale]);
    expect(await readdir(parent)).toEqual([]);
  });

  it("keeps temp dirs younger than olderThanMs, which may belong to a running build", async () => {
    const parent = await tempDir();
    const young = join(parent, "slot.tmp.AbC123");
    await mkdir(young);
    await ageBy(young, HOUR);
    expect(await sweepStaleTemps(parent)).toEqual([]);
    expect(await sweepStaleTemps(parent, { olderThanMs: 2 * HOUR })).toEqual([]);
    expect(await sweepStaleTemps(parent, { olderThanMs: HOUR / 2 })).toEqual([young]);
  });

  it("removes every temp dir with olderThanMs: 0", async () => {
    const parent = await tempDir();
    await mkdir(join(parent, "a.tmp.000000"));
    await mkdir(join(parent, "b.tmp.zzzzzz"));
    expect((await sweepStaleTemps(parent, { olderThanMs: 0 })).sort()).toEqual([
      join(parent, "a.tmp.000000"),
      join(parent, "b.tmp.zzzzzz"),
    ]);
  });

  it("touches slots, files, other names and nested temp dirs not", async () => {
    const parent = await tempDir();
    const keep = [
      "slot", // a finished slot
      "slot.tmp.short", // wrong suffix length
      "slot.tmp.toolong1",
      ".tmp.AbC123", // no slot name
      "slot.tmp.Ab-123", // not alphanumeric
      "file.tmp.AbC123", // a file, not a directory
    ];
    for (const name of keep.slice(0, 5)) await mkdir(join(parent, name));
    await writeFile(join(parent, "file.tmp.AbC123"), "x");
    await mkdir(join(parent, "slot", "inner.tmp.AbC123"));
    for (const name of keep) await ageBy(join(parent, name), 48 * HOUR);
    expect(await sweepStaleTemps(parent, { olderThanMs: 0 })).toEqual([]);
    expect((await readdir(parent)).sort()).toEqual([...keep].sort());
    expect(await readdir(join(parent, "slot"))).toEqual(["inner.tmp.AbC123"]);
  });

  it("returns [] for a missing parent", async () => {
    const root = await tempDir();
    expect(await sweepStaleTemps(join(root, "missing"))).toEqual([]);
  });

  it("rejects a negative age with a RangeError", async () => {
    const parent = await tempDir();
    await expect(sweepStaleTemps(parent, { olderThanMs: -1 })).rejects.toThrow(RangeError);
  });

  it("throws ENOTDIR when parent is a file", async () => {
    const root = await tempDir();
    const file = join(root, "f");
    await writeFile(file, "x");
    await expect(sweepStaleTemps(file)).rejects.toMatchObject({ code: "ENOTDIR" });
  });
});

describe("isStageTempName", () => {
  it("recognises exactly the names stage gives its temp dirs", () => {
    expect(isStageTempName("0123abcd.tmp.Zz09aB")).toBe(true);
    expect(isStageTempName("0123abcd")).toBe(false);
    expect(isStageTempName("x.tmp.12345")).toBe(false);
    expect(isStageTempName("x.tmp.1234567")).toBe(false);
    expect(isStageTempName(".tmp.123456")).toBe(false);
  });
});
