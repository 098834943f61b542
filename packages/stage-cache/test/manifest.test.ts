import { describe, expect, it } from "vitest";
import { bytePathOf } from "../src/byte-path.js";
import {
  escapePath,
  formatManifest,
  type ManifestEntry,
  parseManifest,
  sortEntries,
  unescapePath,
} from "../src/manifest.js";

const hash = (fill: number) => Buffer.alloc(32, fill).toString("hex");
const path = (bytes: string | number[]) =>
  bytePathOf(typeof bytes === "string" ? Buffer.from(bytes) : Buffer.from(bytes));

describe("the manifest text", () => {
  it("writes one line per entry in byte order of paths, the path last", () => {
    const entries: ManifestEntry[] = [
      { kind: "file", rel: path("b/x y.txt"), mode: 0o644, size: 12, hash: hash(1) },
      { kind: "dir", rel: path("b") },
      { kind: "file", rel: path("a-b"), mode: 0o755, size: 0, hash: hash(2) },
      { kind: "file", rel: path("a/c"), mode: 0o600, size: 3, hash: hash(3) },
      { kind: "dir", rel: path("a") },
    ];
    expect(formatManifest(sortEntries(entries))).toBe(
      [
        "d a\n",
        `f 0755 0 ${"02".repeat(32)} a-b\n`,
        `f 0600 3 ${"03".repeat(32)} a/c\n`,
        "d b\n",
        `f 0644 12 ${"01".repeat(32)} b/x y.txt\n`,
      ].join(""),
    );
    expect(parseManifest(formatManifest(entries))).toEqual(entries);
  });

  it("orders paths by their bytes, also where UTF-16 order differs (U+FFFD before an emoji)", () => {
    const names = ["\u{1F600}", "\uFFFD", "z", "é", "Z", "a/b", "a.b"].map((name) => path(name));
    names.push(path([0xff]), path([0x7a, 0x80]));
    const sorted = sortEntries(names.map((rel) => ({ kind: "dir" as const, rel }))).map((entry) => entry.rel);
    const byBytes = [...names].sort((a, b) =>
      Buffer.compare(Buffer.from(a, "latin1"), Buffer.from(b, "latin1")),
    );
    expect(sorted).toEqual(byBytes);
    expect(sorted.indexOf(path("\uFFFD"))).toBeLessThan(sorted.indexOf(path("\u{1F600}")));
  });

  it("escapes %, control characters, DEL and, in names that are not UTF-8, every high byte", () => {
    expect(escapePath(path("plain/名前 ü.txt"))).toBe("plain/名前 ü.txt");
    expect(escapePath(path("new\nline\t100%\x7f"))).toBe("new%0Aline%09100%25%7F");
    expect(escapePath(path([0x66, 0xff, 0x2f, 0xc3, 0xbc]))).toBe("f%FF/%C3%BC");
    const names = [
      path("plain"),
      path("new\nline\r%41"),
      path([0x64, 0xfe, 0x80, 0x2f, 0x66, 0xff]),
      path("😀/\u00e9\u0301"),
      path([0x25, 0x00, 0x01]),
    ];
    for (const name of names) {
      const text = escapePath(name);
      expect(text).not.toMatch(/[\n\r]/);
      expect(unescapePath(text), text).toBe(name);
    }
  });

  it("refuses text that is not a manifest, naming the line", () => {
    expect(() => parseManifest("d a")).toThrow(/last line is not terminated/);
    expect(() => parseManifest("d a\nx b\n")).toThrow(/line 2 is not an entry/);
    expect(() => parseManifest(`f 644 1 ${"0".repeat(64)} a\n`)).toThrow(/line 1/);
    expect(() => parseManifest(`f 0644 01 ${"0".repeat(64)} a\n`)).toThrow(/line 1/);
    expect(() => parseManifest(`f 0644 1 ${"0".repeat(63)} a\n`)).toThrow(/line 1/);
    expect(() => parseManifest("d \n")).toThrow(/line 1/);
    expect(() => unescapePath("a%4")).toThrow(/bad escape/);
    expect(() => unescapePath("a%zz")).toThrow(/bad escape/);
    expect(parseManifest("")).toEqual([]);
  });
});
