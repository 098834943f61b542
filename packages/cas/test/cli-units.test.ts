import { describe, expect, it } from "vitest";
import {
  describeDebris,
  describeProgress,
  formatAge,
  formatCount,
  formatEntryLine,
  formatQuantity,
  formatSize,
  parseDuration,
  parseSize,
} from "../src/cli/index.js";

describe("parseDuration", () => {
  it("reads a number and a unit: ms, s, m, h, d, w", () => {
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("30s")).toBe(30_000);
    expect(parseDuration("10m")).toBe(600_000);
    expect(parseDuration("1.5h")).toBe(5_400_000);
    expect(parseDuration("7d")).toBe(604_800_000);
    expect(parseDuration("2w")).toBe(1_209_600_000);
    expect(parseDuration(" 3 S ")).toBe(3_000);
  });

  it("reads a bare 0 as zero", () => {
    expect(parseDuration("0")).toBe(0);
    expect(parseDuration("0.0")).toBe(0);
  });

  it("refuses another bare number, hinting at the units", () => {
    expect(() => parseDuration("600")).toThrow(RangeError);
    expect(() => parseDuration("600")).toThrow('invalid duration "600" (a unit is required: 600s? 600m?)');
  });

  it("refuses unknown units and junk, naming the accepted forms", () => {
    for (const text of ["10y", "m", "", "-5s", "1e3s", "ten minutes"]) {
      expect(() => parseDuration(text), text).toThrow(/use a number and a unit, ms, s, m, h, d or w/);
    }
  });
});

describe("parseSize", () => {
  it("reads bytes, binary units (with or without iB) and decimal units", () => {
    expect(parseSize("1048576")).toBe(1_048_576);
    expect(parseSize("0")).toBe(0);
    expect(parseSize("512K")).toBe(524_288);
    expect(parseSize("512KiB")).toBe(524_288);
    expect(parseSize("2G")).toBe(2 * 1024 ** 3);
    expect(parseSize("1.5GiB")).toBe(1.5 * 1024 ** 3);
    expect(parseSize("500MB")).toBe(500_000_000);
    expect(parseSize("1tb")).toBe(1e12);
    expect(parseSize("10 b")).toBe(10);
  });

  it("refuses unknown units and junk", () => {
    for (const text of ["2 GB of space", "1x", "-1", "", "KiB"]) {
      expect(() => parseSize(text), text).toThrow(/invalid size .*use bytes or a number and a unit/);
    }
  });
});

describe("formatting", () => {
  it("prints sizes with binary units", () => {
    expect(formatSize(0)).toBe("0 B");
    expect(formatSize(1023)).toBe("1023 B");
    expect(formatSize(1536)).toBe("1.50 KiB");
    expect(formatSize(20 * 1024 ** 2)).toBe("20.0 MiB");
    expect(formatSize(2 * 1024 ** 3)).toBe("2.00 GiB");
  });

  it("prints ages and counts", () => {
    expect(formatAge(12_400)).toBe("12 s ago");
    expect(formatAge(5 * 60_000)).toBe("5 min ago");
    expect(formatAge(3 * 3_600_000)).toBe("3 h ago");
    expect(formatAge(86_400_000)).toBe("1 day ago");
    expect(formatAge(2 * 86_400_000)).toBe("2 days ago");
    expect(formatAge(-5)).toBe("0 s ago");
    expect(formatCount(1234567)).toBe("1,234,567");
    expect(formatCount(999)).toBe("999");
  });

  it("describes progress against totals when known, else with a rate", () => {
    expect(describeProgress({ unit: "files", done: 1234, total: 5457 }, 1000)).toBe("1,234/5,457 files");
    expect(
      describeProgress(
        { unit: "files", done: 10, total: 20, bytes: 1024 ** 2, totalBytes: 2 * 1024 ** 2 },
        1000,
      ),
    ).toBe("10/20 files, 1.00 MiB/2.00 MiB");
    expect(describeProgress({ unit: "files", done: 10, bytes: 4 * 1024 ** 2 }, 2000)).toBe(
      "10 files, 4.00 MiB (2.00 MiB/s)",
    );
  });

  it("names the action first when given", () => {
    expect(describeProgress({ action: "hashing", unit: "files", done: 3, bytes: 1024 }, 1000)).toBe(
      "hashing 3 files, 1.00 KiB (1.00 KiB/s)",
    );
    expect(describeProgress({ action: "writing", unit: "files", done: 1, total: 2 }, 1000)).toBe(
      "writing 1/2 files",
    );
  });
});

describe("formatQuantity", () => {
  it("says one thing in the singular and any other count in the plural, with separators", () => {
    expect(formatQuantity(1, "entry", "entries")).toBe("1 entry");
    expect(formatQuantity(0, "entry", "entries")).toBe("0 entries");
    expect(formatQuantity(1500, "baseline")).toBe("1,500 baselines");
  });
});

describe("listings", () => {
  it("lays out an ls line as size, last use, key and path", () => {
    const now = Date.parse("2030-01-01T00:00:00Z");
    expect(
      formatEntryLine({ bytes: 20 * 1024 ** 2, lastUsedMs: now - 5 * 60_000, key: "k", path: "/c/k" }, now),
    ).toBe("  20.0 MiB  5 min ago     k  /c/k");
  });

  it("sums up debris, saying how much a clean would remove", () => {
    expect(describeDebris("tool", [])).toBeUndefined();
    expect(
      describeDebris("tool", [
        { bytes: 1024, stale: true },
        { bytes: 2048, stale: false },
      ]),
    ).toBe("debris: 2 items, 3.00 KiB (1 stale, 1.00 KiB: run 'tool clean')");
    expect(describeDebris("tool", [{ bytes: 10, stale: false }])).toBe(
      "debris: 1 item, 10 B (none stale yet: it may belong to a run in progress)",
    );
  });
});
