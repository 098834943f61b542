import { execFile } from "node:child_process";
import { mkdir, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { kernelTest } from "@cas-stage/test-support/kernel";
import { forChild } from "@cas-stage/test-support/mutation";
import { describe, expect, it } from "vitest";
import { isStageTempName, sweepStaleTemps } from "../src/index.js";
import { quoted, waitForTrace } from "./entry-processes.js";
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

  it("rejects a negative or missing age with a RangeError that says so", async () => {
    const parent = await tempDir();
    await expect(sweepStaleTemps(parent, { olderThanMs: -1 })).rejects.toThrow(
      new RangeError("sweepStaleTemps: olderThanMs must be >= 0, got -1"),
    );
    await expect(sweepStaleTemps(parent, { olderThanMs: Number.NaN })).rejects.toThrow(RangeError);
  });

  it("with olderThanMs: 0 removes even a temp dir whose mtime is ahead of the clock", async () => {
    const parent = await tempDir();
    const ahead = join(parent, "slot.tmp.AbC123");
    await mkdir(ahead);
    await ageBy(ahead, -HOUR);
    expect(await sweepStaleTemps(parent, { olderThanMs: 0 })).toEqual([ahead]);
  });

  it("lets two sweepers run at once: every temp dir goes, neither fails", async () => {
    const parent = await tempDir();
    const temps: string[] = [];
    for (let i = 0; i < 60; i++) {
      const temp = join(parent, `s${i}.tmp.AbC123`);
      await mkdir(join(temp, "d"), { recursive: true });
      await writeFile(join(temp, "d", "f"), "x");
      temps.push(temp);
    }
    const [a, b] = await Promise.all([
      sweepStaleTemps(parent, { olderThanMs: 0 }),
      sweepStaleTemps(parent, { olderThanMs: 0 }),
    ]);
    expect(new Set([...a, ...b])).toEqual(new Set(temps));
    expect(await readdir(parent)).toEqual([]);
  });

  it("throws ENOTDIR when parent is a file", async () => {
    const root = await tempDir();
    const file = join(root, "f");
    await writeFile(file, "x");
    await expect(sweepStaleTemps(file)).rejects.toMatchObject({ code: "ENOTDIR" });
  });
});

describe("sweepStaleTemps racing another sweeper", () => {
  kernelTest(
    "strace",
    "skips a temp dir another sweeper removed between the listing and its lstat",
    async () => {
      const parent = await tempDir();
      const gone = join(parent, "a.tmp.AAAAAA");
      const kept = join(parent, "b.tmp.BBBBBB");
      for (const temp of [gone, kept]) await mkdir(temp);
      const output = join(await tempDir(), "trace");
      const worker = join(import.meta.dirname, "workers", "sweep-worker.mjs");
      const bridge = forChild();
      // Held just after it listed the parent: getdents64 on the parent's descriptor returns the names, then
      // the delay.
      const sweeping = promisify(execFile)(
        "strace",
        [
          "-f",
          "-qq",
          "-o",
          output,
          "-e",
          "trace=openat,getdents64",
          "-e",
          "inject=getdents64:delay_exit=400000",
        ].concat([process.execPath, worker, parent]),
        { env: bridge.env },
      ).finally(bridge.collect);
      const opened = await waitForTrace(
        output,
        new RegExp(`openat\\(AT_FDCWD, ${quoted(parent)}", .*O_DIRECTORY.*\\) = \\d+`),
      );
      const fd = opened.split(" = ").at(-1);
      await waitForTrace(output, new RegExp(`getdents64\\(${fd}, .*\\) = [1-9]`));
      await rm(gone, { recursive: true });
      const { stdout } = await sweeping;
      expect(JSON.parse(stdout)).toEqual({ removed: [kept] });
      expect(await readdir(parent)).toEqual([]);
    },
  );
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
