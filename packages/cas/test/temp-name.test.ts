// Temp dir names. Their random suffix comes from crypto.randomBytes, replaced here by a source the test
// controls: a clash of two 6-character names cannot be produced on demand otherwise. Directories are real.
import { mkdir, readdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { tempDir } from "./fixtures.js";

const random = vi.hoisted(() => ({ next: undefined as ((size: number) => Buffer) | undefined, calls: 0 }));

vi.mock("node:crypto", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:crypto")>();
  const randomBytes = (size: number) => {
    random.calls++;
    return random.next ? random.next(size) : real.randomBytes(size);
  };
  return { ...real, randomBytes, default: { ...real, randomBytes } };
});

const { isStageTempName, sweepStaleTemps } = await import("../src/index.js");
const { makeTempDir, tempPrefixFor } = await import("../src/temp-name.js");

beforeEach(() => {
  random.next = undefined;
  random.calls = 0;
});

/** A source that hands out `bytes` in order, as many per call as asked. */
function sequence(bytes: number[]): (size: number) => Buffer {
  const queue = [...bytes];
  return (size) => Buffer.from(queue.splice(0, size));
}

describe("makeTempDir", () => {
  it("draws six characters of [A-Za-z0-9] from the random bytes, skipping bytes 248-255 that would bias them", async () => {
    const parent = await tempDir();
    random.next = sequence([248, 255, 0, 1, 61, 62, 123, 247, 25, 26, 51, 52]);
    const path = await makeTempDir(parent, "slot.tmp.");
    expect(basename(path)).toBe("slot.tmp.AB9A99");
    expect(random.calls).toBe(1);
    random.next = sequence([252, 25, 26, 51, 52, 40, 10, 9, 9, 9, 9, 9, 9]);
    expect(basename(await makeTempDir(parent, "slot.tmp."))).toBe("slot.tmp.Zaz0oK");
  });

  it("draws again when too few bytes were usable", async () => {
    const parent = await tempDir();
    random.next = sequence([...Array(10).fill(250), 0, 1, 2, 3, 4, 5, ...Array(6).fill(250)]);
    expect(basename(await makeTempDir(parent, "p."))).toBe("p.ABCDEF");
    expect(random.calls).toBe(2);
  });

  it("takes another name when the drawn one exists", async () => {
    const parent = await tempDir();
    await mkdir(join(parent, "slot.tmp.AAAAAA"));
    random.next = sequence([...Array(12).fill(0), ...Array(12).fill(1)]);
    expect(basename(await makeTempDir(parent, "slot.tmp."))).toBe("slot.tmp.BBBBBB");
    expect(random.calls).toBe(2);
  });

  it("gives up with EEXIST after a hundred clashes in a row, which means something else is wrong", async () => {
    const parent = await tempDir();
    await mkdir(join(parent, "slot.tmp.AAAAAA"));
    random.next = (size) => Buffer.alloc(size, 0);
    await expect(makeTempDir(parent, "slot.tmp.")).rejects.toMatchObject({ code: "EEXIST" });
    expect(random.calls).toBe(101);
    expect(await readdir(parent)).toEqual(["slot.tmp.AAAAAA"]);
  });

  it("throws other mkdir errors at once", async () => {
    const parent = await tempDir();
    await expect(makeTempDir(join(parent, "missing"), "slot.tmp.")).rejects.toMatchObject({ code: "ENOENT" });
    expect(random.calls).toBe(1);
  });
});

describe("temp names of unusual slots", () => {
  it("recognises (and sweeps) the temp dir of a slot whose name holds a newline", async () => {
    const parent = await tempDir();
    const path = await makeTempDir(parent, tempPrefixFor(join(parent, "two\nlines")));
    expect(isStageTempName(basename(path))).toBe(true);
    expect(await sweepStaleTemps(parent, { olderThanMs: 0 })).toEqual([path]);
  });
});
