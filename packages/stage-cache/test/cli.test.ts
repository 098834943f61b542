import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { formatSize, parseDuration, parseSize } from "../src/sizes.js";
import { sampleTree, tempDir } from "./fixtures.js";

const CLI = fileURLToPath(new URL("../dist/cli.js", import.meta.url));

function run(...args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("cas-stage-cache", () => {
  it("stages with --fingerprint and prints the path; ls lists it; sweep --max-size evicts it", () => {
    const source = sampleTree(tempDir("src"));
    const cacheDir = join(tempDir("root"), "cache");
    const staged = run("stage", source, "--fingerprint", "cli-fp", "--cache-dir", cacheDir);
    expect(staged).toMatchObject({ status: 0, stderr: "" });
    const path = staged.stdout.trim();
    expect(path).toBe(join(cacheDir, "cl", "cli-fp"));
    expect(readFileSync(join(path, "README.md"), "utf8")).toBe("# sample x\n");

    const listed = run("ls", "--cache-dir", cacheDir);
    expect(listed.status).toBe(0);
    expect(listed.stdout).toMatch(/195\.4 KiB\s+\d+ s ago\s+cli-fp/);
    const json = JSON.parse(run("ls", "--json", "--cache-dir", cacheDir).stdout);
    expect(json).toEqual([
      { fingerprint: "cli-fp", path, bytes: expect.any(Number), lastUsed: expect.any(String) },
    ]);

    const swept = run("sweep", "--max-size", "1KiB", "--min-age", "0", "--cache-dir", cacheDir);
    expect(swept).toMatchObject({ status: 0, stdout: "removed 1 entries, freed 195.4 KiB, 0 B remain\n" });
    expect(existsSync(path)).toBe(false);
  });

  it("sweep keeps recently used entries, says why, and reports JSON with --json", () => {
    const cacheDir = join(tempDir("root"), "cache");
    const path = run(
      "stage",
      sampleTree(tempDir("src")),
      "--fingerprint",
      "kept",
      "--cache-dir",
      cacheDir,
    ).stdout.trim();
    const kept = run("sweep", "--max-size", "1KiB", "--cache-dir", cacheDir);
    expect(kept).toMatchObject({
      status: 0,
      stdout:
        "removed 0 entries, freed 0 B, 195.4 KiB remain (over 1.00 KiB: the rest was used within --min-age 10m)\n",
    });
    const [entry] = JSON.parse(run("ls", "--json", "--cache-dir", cacheDir).stdout);
    const swept = run("sweep", "--max-size", "1KiB", "--min-age", "0", "--json", "--cache-dir", cacheDir);
    expect(JSON.parse(swept.stdout)).toEqual({
      removed: [path],
      freedBytes: entry.bytes,
      totalBytes: 0,
      measuredOnly: false,
    });
  });

  it("sweep says that it only measured when there is no size limit (--max-size absent or 0)", () => {
    const cacheDir = join(tempDir("root"), "cache");
    const path = run(
      "stage",
      sampleTree(tempDir("src")),
      "--fingerprint",
      "kept",
      "--cache-dir",
      cacheDir,
    ).stdout.trim();
    for (const limit of [[], ["--max-size", "0"]]) {
      const swept = run("sweep", ...limit, "--min-age", "0", "--cache-dir", cacheDir);
      expect(swept).toMatchObject({
        status: 0,
        stdout: "nothing removed: no size limit (--max-size absent or 0); 195.4 KiB in complete entries\n",
      });
      const json = JSON.parse(
        run("sweep", ...limit, "--min-age", "0", "--json", "--cache-dir", cacheDir).stdout,
      );
      expect(json).toMatchObject({ removed: [], measuredOnly: true });
    }
    expect(existsSync(path)).toBe(true);
  });

  it("stages with --auto under the tree's fingerprint", () => {
    const cacheDir = join(tempDir("root"), "cache");
    const one = run("stage", sampleTree(tempDir("a")), "--auto", "--cache-dir", cacheDir).stdout.trim();
    const two = run("stage", sampleTree(tempDir("b")), "--auto", "--cache-dir", cacheDir).stdout.trim();
    expect(one).toMatch(/[0-9a-f]{64}$/);
    expect(two).toBe(one);
  });

  it("prints help for each command", () => {
    for (const args of [["--help"], ["stage", "--help"], ["sweep", "-h"], ["ls", "--help"]]) {
      const result = run(...args);
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(/^Usage: cas-stage-cache/);
    }
  });

  it("reports errors as one line on stderr with a non-zero exit and no stack", () => {
    const cacheDir = join(tempDir("root"), "cache");
    const cases = [
      [
        ["stage", join(tempDir("x"), "missing"), "--fingerprint", "f", "--cache-dir", cacheDir],
        /source directory does not exist/,
      ],
      [["stage", tempDir("x"), "--fingerprint", "../x", "--cache-dir", cacheDir], /invalid fingerprint/],
      [["stage", tempDir("x"), "--cache-dir", cacheDir], /--fingerprint <fp> or --auto/],
      [["sweep", "--max-size", "lots"], /invalid size "lots"/],
      [["frobnicate"], /unknown command/],
      [["ls", "--bogus"], /Unknown option '--bogus'/],
    ] as const;
    for (const [args, message] of cases) {
      const result = run(...args);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/^cas-stage-cache: /);
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
    }
  });
});

describe("sizes and durations", () => {
  it("parses plain bytes, binary and decimal units", () => {
    expect(parseSize("1048576")).toBe(1048576);
    expect(parseSize("2GiB")).toBe(2 * 1024 ** 3);
    expect(parseSize("500MB")).toBe(500_000_000);
    expect(parseSize("1.5 kib")).toBe(1536);
    expect(parseSize("2G")).toBe(2 * 1024 ** 3);
    expect(() => parseSize("-1")).toThrow(RangeError);
    expect(parseDuration("10m")).toBe(600_000);
    expect(parseDuration("250")).toBe(250);
  });

  it("formats sizes for people", () => {
    expect(formatSize(512)).toBe("512 B");
    expect(formatSize(1536)).toBe("1.50 KiB");
    expect(formatSize(20 * 1024 ** 2)).toBe("20.0 MiB");
    expect(formatSize(2 * 1024 ** 3)).toBe("2.00 GiB");
  });
});
