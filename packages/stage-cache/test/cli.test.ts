// cas-stage-cache through its real binary (bin/cas-stage-cache.js, the bundle npm installs) in real processes: every command and option, exit
// codes, JSON shapes, signals mid-copy, a closed pipe.

import { spawnSync } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, utimesSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { formatSize } from "@cas-stage/cas/cli";
import { CliProcess, runCliSync } from "@cas-stage/test-support/cli";
import { kernelTest } from "@cas-stage/test-support/kernel";
import { describe, expect, it } from "vitest";
import { StageCache } from "../src/index.js";
import { sampleTree, tempDir, writeTree } from "./fixtures.js";

const CLI = fileURLToPath(new URL("../bin/cas-stage-cache.js", import.meta.url));
const VERSION = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;

const run = (...args: string[]) => runCliSync(CLI, args);
const json = (...args: string[]) => {
  const result = run(...args, "--json");
  return { ...result, body: JSON.parse(result.stdout) as Record<string, unknown> };
};

/** Runs a bash command line (a pipeline) to completion. */
const runCliSyncShell = (script: string) => spawnSync("bash", ["-c", script], { encoding: "utf8" });

/** A cache root that does not exist yet. */
const newRoot = () => join(tempDir("root"), "cache");

/** A sample tree's size in bytes, as the cache counts it (regular files that stage copies). */
const SAMPLE_BYTES = "# sample x\n".length + "SECRET=x\n".length + "#!/bin/sh\necho x\n".length + 6 + 200_000;

describe("cas-stage-cache stage", () => {
  it("copies on a miss, reuses on a hit, prints the path on stdout and what happened on stderr", () => {
    const source = sampleTree(tempDir("src"));
    const root = newRoot();
    const miss = run("stage", source, "--fingerprint", "cli-fp", "--cache-dir", root);
    expect(miss.code).toBe(0);
    expect(miss.stdout).toBe(`${join(root, "cl", "cli-fp")}\n`);
    expect(miss.stderr).toBe(
      `cas-stage-cache: entry cli-fp, cache miss: copied 6 files (${(SAMPLE_BYTES / 1024).toFixed(1)} KiB) into the cache\n`,
    );
    expect(readFileSync(join(root, "cl", "cli-fp", "README.md"), "utf8")).toBe("# sample x\n");
    const hit = run("stage", source, "--fingerprint", "cli-fp", "--cache-dir", root);
    expect(hit).toEqual({
      code: 0,
      stdout: miss.stdout,
      stderr: "cas-stage-cache: entry cli-fp, cache hit\n",
    });
    expect(run("stage", source, "--fingerprint", "cli-fp", "--cache-dir", root, "-q").stderr).toBe("");
  });

  it("prints its result as JSON, version 1", () => {
    const source = sampleTree(tempDir("src"));
    const root = newRoot();
    const path = join(root, "js", "json-fp");
    expect(json("stage", source, "--fingerprint", "json-fp", "--cache-dir", root).body).toEqual({
      version: 1,
      path,
      fingerprint: "json-fp",
      cache: "miss",
      copied: { files: 6, bytes: SAMPLE_BYTES },
    });
    expect(json("stage", source, "--fingerprint", "json-fp", "--cache-dir", root).body).toEqual({
      version: 1,
      path,
      fingerprint: "json-fp",
      cache: "hit",
    });
  });

  it("keys the copy by the tree's sha256 with --auto, so identical trees share it", () => {
    const root = newRoot();
    const one = json("stage", sampleTree(tempDir("a")), "--auto", "--cache-dir", root).body;
    const two = json("stage", sampleTree(tempDir("b")), "--auto", "--cache-dir", root).body;
    expect(one).toMatchObject({ cache: "miss", fingerprint: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(two).toEqual({ version: 1, path: one.path, fingerprint: one.fingerprint, cache: "hit" });
  });

  it("always prints absolute paths, also for a relative --cache-dir", () => {
    const cwd = tempDir("cwd");
    const source = sampleTree(join(cwd, "src"));
    const result = runCliSync(CLI, ["stage", "src", "--fingerprint", "rel", "--cache-dir", "cache"], { cwd });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${join(cwd, "cache", "re", "rel")}\n`);
    expect(existsSync(join(cwd, "cache", "re", "rel", "README.md"))).toBe(true);
    expect(relative(cwd, source)).toBe("src");
  });

  it("serves a hit from a cache it cannot write, creating nothing", () => {
    const source = sampleTree(tempDir("src"));
    const root = newRoot();
    run("stage", source, "--fingerprint", "ro", "--cache-dir", root);
    const before = readdirSync(root).sort();
    const hit = runCliSync(CLI, [
      "stage",
      join(tempDir("x"), "gone"),
      "--fingerprint",
      "ro",
      "--cache-dir",
      root,
    ]);
    // A hit never looks at the source (here: missing), as StageCache.stage does.
    expect(hit).toMatchObject({ code: 0, stdout: `${join(root, "ro", "ro")}\n` });
    expect(readdirSync(root).sort()).toEqual(before);
  });
});

describe("cas-stage-cache ls, sweep, rm, clean, verify", () => {
  async function rootWith(fingerprints: string[], source = sampleTree(tempDir("src"))) {
    const root = newRoot();
    const cache = await StageCache.open({ root });
    const paths: string[] = [];
    for (const fingerprint of fingerprints) paths.push(await cache.stage(source, fingerprint));
    await cache.close();
    return { root, paths, source };
  }

  const age = (path: string, ms: number) => {
    const then = new Date(Date.now() - ms);
    utimesSync(join(path, ".cas-stage-complete"), then, then);
  };

  it("ls prints one line per entry on stdout (most recent first) and the summary on stderr", async () => {
    const { root, paths } = await rootWith(["older", "newer"]);
    age(paths[0] as string, 3 * 3600_000);
    const listed = run("ls", "--cache-dir", root);
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^ +195\.4 KiB {2}\d+ s ago +newer {2}\/.+\/ne\/newer$/);
    expect(lines[1]).toMatch(/^ +195\.4 KiB {2}3 h ago +older {2}\/.+\/ol\/older$/);
    expect(listed.stderr).toBe(`cas-stage-cache: 2 entries, ${formatSize(2 * SAMPLE_BYTES)} in ${root}\n`);
  });

  it("ls --json lists entries and debris with their sizes", async () => {
    const { root, paths } = await rootWith(["one"]);
    const temp = writeTree(join(root, ".staging", "one.tmp.abcDEF"), { "half.txt": "12345" });
    const old = new Date(Date.now() - 2 * 86_400_000);
    utimesSync(temp, old, old);
    const { body, stderr } = json("ls", "--cache-dir", root);
    expect(body).toEqual({
      version: 1,
      root,
      entries: [{ fingerprint: "one", path: paths[0], bytes: SAMPLE_BYTES, lastUsed: expect.any(String) }],
      debris: [{ kind: "temp", path: temp, bytes: 5, stale: true }],
      totalBytes: SAMPLE_BYTES,
      debrisBytes: 5,
    });
    expect(Date.parse((body.entries as { lastUsed: string }[])[0]?.lastUsed as string)).toBeGreaterThan(
      Date.now() - 60_000,
    );
    expect(stderr).toBe("");
    expect(run("ls", "--cache-dir", root).stderr).toContain(
      "cas-stage-cache: debris: 1 item, 5 B (1 stale, 5 B: run 'cas-stage-cache clean')\n",
    );
  });

  it("sweep evicts the least recently used down to --max-size, never within --min-age, and --dry-run only says", async () => {
    const { root, paths } = await rootWith(["old", "new"]);
    age(paths[0] as string, 3600_000);
    const dry = run("sweep", "--max-size", "200KiB", "--min-age", "30m", "--dry-run", "--cache-dir", root);
    expect(dry).toEqual({
      code: 0,
      stdout: `${paths[0]}\n`,
      stderr: "cas-stage-cache: would remove 1 entry, freeing 195.4 KiB; 195.4 KiB remain\n",
    });
    expect(existsSync(paths[0] as string)).toBe(true);
    const kept = json("sweep", "--max-size", "1KiB", "--min-age", "2h", "--cache-dir", root);
    expect(kept.body).toEqual({
      version: 1,
      dryRun: false,
      removed: [],
      freedBytes: 0,
      totalBytes: 2 * SAMPLE_BYTES,
      measuredOnly: false,
    });
    expect(run("sweep", "--max-size", "1KiB", "--cache-dir", root).stderr).toBe(
      "cas-stage-cache: removed 1 entry, freed 195.4 KiB; 195.4 KiB remain (over 1.00 KiB: the rest was used within --min-age 10m)\n",
    );
    expect(existsSync(paths[0] as string)).toBe(false);
    expect(existsSync(paths[1] as string)).toBe(true);
  });

  it("sweep without a size limit removes nothing and says so", async () => {
    const { root, paths } = await rootWith(["kept"]);
    for (const limit of [[], ["--max-size", "0"]]) {
      const swept = run("sweep", ...limit, "--min-age", "0", "--cache-dir", root);
      expect(swept).toEqual({
        code: 0,
        stdout: "",
        stderr: `cas-stage-cache: nothing removed: no size limit (--max-size absent or 0); 195.4 KiB in complete entries in ${root}\n`,
      });
      expect(json("sweep", ...limit, "--cache-dir", root).body).toMatchObject({
        removed: [],
        measuredOnly: true,
      });
    }
    expect(existsSync(paths[0] as string)).toBe(true);
  });

  it("rm removes one entry, keeps a recently used one unless --force, and says when there is none", async () => {
    const { root, paths } = await rootWith(["busy", "idle"]);
    age(paths[1] as string, 3600_000);
    const removed = json("rm", "idle", "--cache-dir", root);
    expect(removed.code).toBe(0);
    expect(removed.body).toEqual({
      version: 1,
      removed: { fingerprint: "idle", path: paths[1], bytes: SAMPLE_BYTES, lastUsed: expect.any(String) },
    });
    expect(existsSync(paths[1] as string)).toBe(false);

    const busy = run("rm", "busy", "--cache-dir", root);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(
      /^cas-stage-cache: entry busy was used \d+ s ago, within the minimum age .*--force/,
    );
    expect(json("rm", "busy", "--cache-dir", root).body).toMatchObject({
      error: { code: "EBUSY", path: paths[0] },
    });
    expect(run("rm", "busy", "--force", "--cache-dir", root)).toEqual({
      code: 0,
      stdout: `${paths[0]}\n`,
      stderr: "cas-stage-cache: removed entry busy, 195.4 KiB\n",
    });
    const none = json("rm", "busy", "--cache-dir", root);
    expect(none.code).toBe(1);
    expect(none.body).toEqual({
      version: 1,
      error: { code: "ENOENT", message: `entry busy is not in the cache ${root}`, path: paths[0] },
    });
  });

  it("clean removes only stale debris, --dry-run first says what it would remove", async () => {
    const { root, paths } = await rootWith(["entry"]);
    const stale = writeTree(join(root, ".staging", "x.tmp.AAAAAA"), { f: "123" });
    const fresh = writeTree(join(root, ".staging", "y.tmp.BBBBBB"), { f: "4567" });
    const old = new Date(Date.now() - 2 * 86_400_000);
    utimesSync(stale, old, old);
    expect(run("clean", "--dry-run", "--cache-dir", root)).toEqual({
      code: 0,
      stdout: `${stale}\n`,
      stderr: `cas-stage-cache: would remove 1 piece of debris, freeing 3 B in ${root}\n`,
    });
    expect(existsSync(stale)).toBe(true);
    expect(json("clean", "--cache-dir", root).body).toEqual({
      version: 1,
      dryRun: false,
      removed: [{ kind: "temp", path: stale, bytes: 3, stale: true }],
      repaired: [],
      freedBytes: 3,
    });
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    expect(run("clean", "--older-than", "0", "--cache-dir", root).stdout).toBe(`${fresh}\n`);
    expect(existsSync(paths[0] as string)).toBe(true);
  });

  it("creates nothing when the cache does not exist: ls, sweep, clean and verify find it empty, rm finds nothing", () => {
    const root = newRoot();
    for (const command of ["ls", "sweep", "clean", "verify"]) {
      const result = json(command, "--cache-dir", root);
      expect(result.code, command).toBe(0);
      expect(result.body, command).toMatchObject({ version: 1 });
    }
    expect(json("ls", "--cache-dir", root).body).toMatchObject({ entries: [], debris: [], totalBytes: 0 });
    expect(json("rm", "nothing", "--cache-dir", root).body).toMatchObject({ error: { code: "ENOENT" } });
    expect(existsSync(root)).toBe(false);
    expect(existsSync(join(root, ".."))).toBe(true);
  });

  it("verify exits 1 and names the first differing path of a bad entry; --fix moves it aside", async () => {
    const { root, paths } = await rootWith(["good", "bad"]);
    expect(run("verify", "--cache-dir", root)).toEqual({
      code: 0,
      stdout: "",
      stderr: `cas-stage-cache: checked 2 entries (${formatSize(2 * SAMPLE_BYTES)}) against the manifests their copies recorded: all whole\n`,
    });
    appendFileSync(join(paths[1] as string, "src", "a", "b", "c.txt"), "!");
    const bad = run("verify", "--cache-dir", root);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe("bad  size src/a/b/c.txt (expected 6 bytes, found 7 bytes)\n");
    expect(bad.stderr).toContain("1 bad (run 'cas-stage-cache verify --fix' to move them aside)");
    const fixed = json("verify", "--fix", "--cache-dir", root);
    expect(fixed.code).toBe(0);
    expect(fixed.body).toMatchObject({ version: 1, bad: 1, fixed: 1, checkedBytes: 2 * SAMPLE_BYTES });
    expect(
      (fixed.body.entries as unknown[]).find((entry) => (entry as { status: string }).status === "bad"),
    ).toEqual({
      fingerprint: "bad",
      path: paths[1],
      bytes: SAMPLE_BYTES,
      lastUsed: expect.any(String),
      status: "bad",
      difference: { path: "src/a/b/c.txt", problem: "size", expected: "6 bytes", found: "7 bytes" },
      fixed: true,
    });
    expect(existsSync(paths[1] as string)).toBe(false);
    expect(run("verify", "--cache-dir", root).code).toBe(0);
  });
});

describe("cas-stage-cache conventions", () => {
  it("prints its version with -V and --version", () => {
    for (const flag of ["-V", "--version"])
      expect(run(flag)).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: "" });
  });

  it("prints help for the tool and each command on stdout, exit 0", () => {
    const tool = run("--help");
    expect(tool.code).toBe(0);
    for (const command of ["stage", "ls", "sweep", "rm", "clean", "verify"]) {
      expect(tool.stdout).toMatch(new RegExp(`^  ${command} `, "m"));
      const topic = run("help", command);
      expect(topic.code).toBe(0);
      expect(topic.stdout).toMatch(new RegExp(`^Usage: cas-stage-cache ${command}`));
      expect(run(command, "--help").stdout).toBe(topic.stdout);
    }
  });

  it("treats a mistake in the command line as a usage error: exit 2, the reason and a hint on stderr", () => {
    const root = newRoot();
    const source = tempDir("src");
    const cases: [string[], RegExp][] = [
      [[], /a command is needed\n\nUsage: cas-stage-cache <command>/],
      [
        ["frobnicate"],
        /unknown command "frobnicate"\nusage: cas-stage-cache <command> \[options\]\nrun 'cas-stage-cache help' for more\n$/,
      ],
      [
        ["ls", "--bogus"],
        /Unknown option '--bogus'\nusage: cas-stage-cache ls\nrun 'cas-stage-cache help ls' for more\n$/,
      ],
      [["stage", "--auto"], /missing argument\nusage: cas-stage-cache stage <dir>/],
      [["stage", source], /exactly one of --fingerprint FP and --auto.*\nusage: cas-stage-cache stage <dir>/],
      [["stage", source, "--auto", "--fingerprint", "x"], /exactly one of --fingerprint FP and --auto/],
      [
        ["stage", source, "--fingerprint", "../x"],
        /--fingerprint: invalid fingerprint "..\/x": a fingerprint must match/,
      ],
      [["rm", "a/b"], /invalid fingerprint "a\/b"/],
      [["sweep", "--max-size", "lots"], /--max-size: invalid size "lots"/],
      [["sweep", "--min-age", "600"], /--min-age: invalid duration "600" \(a unit is required/],
      [["clean", "extra"], /unexpected argument "extra"\nusage: cas-stage-cache clean/],
    ];
    for (const [args, message] of cases) {
      const result = run(...args, "--cache-dir", root);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stdout, args.join(" ")).toBe("");
      expect(result.stderr, args.join(" ")).toMatch(/^cas-stage-cache: /);
      expect(result.stderr, args.join(" ")).toMatch(message);
    }
    expect(existsSync(root)).toBe(false);
  });

  it("reports a failure in one line (plus its causes), exit 1, or as JSON with --json", () => {
    const root = newRoot();
    const missing = join(tempDir("x"), "missing");
    const failed = run("stage", missing, "--fingerprint", "f", "--cache-dir", root);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toBe("");
    expect(failed.stderr).toMatch(/^cas-stage-cache: source directory does not exist: .*missing/);
    expect(failed.stderr).not.toMatch(/\n\s+at /);
    const asJson = json("stage", missing, "--fingerprint", "f", "--cache-dir", root);
    expect(asJson.code).toBe(1);
    expect(asJson.body).toEqual({
      version: 1,
      error: {
        code: "ENOENT",
        message: expect.stringMatching(/^source directory does not exist/),
        path: missing,
      },
    });
    expect(json("ls", "--bogus").body).toMatchObject({ version: 1, error: { code: "EUSAGE" } });
  });

  it("exits 141 without a word when the reader of ls goes away (1,500 entries)", async () => {
    const root = newRoot();
    const cache = await StageCache.open({ root });
    const source = writeTree(tempDir("src"), { f: "x" });
    for (let i = 0; i < 1500; i++) await cache.stage(source, `entry-${i}`);
    await cache.close();
    // As a shell runs `cas-stage-cache ls | head -1`: the output (1,500 lines, more than a pipe holds) meets
    // a reader that has gone after one line.
    for (const extra of ["", " --json"]) {
      const shell = runCliSyncShell(
        `"${process.execPath}" "${CLI}" ls --cache-dir "${root}"${extra} 2>"${root}.err" | head -1; echo "exit \${PIPESTATUS[0]}"`,
      );
      const [first, exit] = shell.stdout.trimEnd().split("\n");
      expect(first, extra).toMatch(extra ? /^\{$/ : /entry-\d+/);
      expect(exit, extra).toBe("exit 141");
      expect(readFileSync(`${root}.err`, "utf8"), extra).toBe("");
    }
  }, 60_000);
});

describe("cas-stage-cache interrupted mid-copy", () => {
  // strace delays every openat by 2 ms, so copying 1,500 files takes seconds: the signal lands mid-copy.
  const SLOW = ["-e", "trace=openat", "-e", "inject=openat:delay_enter=2000"];

  for (const [signal, exit] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    kernelTest(
      "strace",
      `stops on ${signal}, clears its progress line, leaves nothing behind, exits ${exit}`,
      async () => {
        const files: Record<string, string> = {};
        for (let i = 0; i < 1500; i++) files[`d${i % 10}/f${i}.txt`] = `file ${i}\n`;
        const source = writeTree(tempDir("src"), files);
        const root = newRoot();
        mkdirSync(root, { recursive: true });
        for (const [mode, args] of [
          ["fingerprint", ["--fingerprint", "big"]],
          ["auto", ["--auto"]],
        ] as const) {
          const stage = new CliProcess(CLI, ["stage", source, ...args, "--cache-dir", root, "--progress"], {
            strace: SLOW,
          });
          // A drawn progress line of the copy itself (with --auto, after the hashing), then the signal.
          await stage.waitForStderr(/copying \d/);
          await stage.kill(signal);
          const { code, stdout, stderr } = await stage.exited;
          expect(code, mode).toBe(exit);
          expect(stdout, mode).toBe("");
          // With --auto the hashing found the totals, which the copy is then shown against; without, a rate.
          const drawn = stderr.split("\u001b[K");
          expect(drawn, mode).toContainEqual(
            expect.stringMatching(
              mode === "auto"
                ? /^\rcas-stage-cache: copying [\d,]+\/1,500 files, [\d.]+ \S+\/13\.6 KiB$/
                : /^\rcas-stage-cache: copying [\d,]+ files, [\d.]+ \S+ \([\d.]+ \S+\/s\)$/,
            ),
          );
          if (mode === "auto") expect(stderr).toMatch(/\rcas-stage-cache: hashing [\d,]+ files/);
          expect(stderr.endsWith(`\r\u001b[Kcas-stage-cache: interrupted by ${signal}\n`), mode).toBe(true);
          expect(readdirSync(join(root, ".staging")), mode).toEqual([]);
          expect(readdirSync(join(root, ".scratch")), mode).toEqual([]);
          expect(readdirSync(join(root, ".trash")), mode).toEqual([]);
          expect(
            readdirSync(root).filter((name) => !name.startsWith(".")),
            mode,
          ).toEqual([]);
        }
      },
      120_000,
    );
  }
});
