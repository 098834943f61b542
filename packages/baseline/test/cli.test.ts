import { spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CliProcess } from "@cas-stage/test-support/cli";
import { kernelTest } from "@cas-stage/test-support/kernel";
import { afterEach, describe, expect, it } from "vitest";
import {
  cacheNames,
  makeTempDir,
  originAndClone,
  removeTempDirs,
  setLastUse,
  type TestRepo,
  testTmpDir,
} from "./fixtures.js";

afterEach(removeTempDirs);

const CLI = fileURLToPath(new URL("../bin/cas-baseline.js", import.meta.url));

function run(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? process.cwd(),
    env: { ...process.env, ...options.env },
    encoding: "utf8",
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("cas-baseline", () => {
  it("prints pathOrig on stdout and which commit, how, and the cache outcome on stderr", () => {
    const { repo, first } = originAndClone();
    const cacheDir = makeTempDir("cache");
    const built = run(["--path", join(repo.dir, "src"), "--cache-dir", cacheDir]);
    expect(built.status).toBe(0);
    expect(built.stdout).toBe(`${join(cacheDir, "baselines", first, "src")}\n`);
    expect(built.stderr).toBe(
      `cas-baseline: baseline ${first.slice(0, 7)} (merge-base with @{u}), built into the cache\n`,
    );
    const hit = run(["--cache-dir", cacheDir], { cwd: repo.dir });
    expect(hit.stdout).toBe(`${join(cacheDir, "baselines", first)}\n`);
    expect(hit.stderr).toBe(
      `cas-baseline: baseline ${first.slice(0, 7)} (merge-base with @{u}), cache hit\n`,
    );
  });

  it("prints the whole result with --json, and honours --base", () => {
    const { repo, first } = originAndClone();
    const cacheDir = makeTempDir("cache");
    const out = run(["--path", repo.dir, "--base", first, "--cache-dir", cacheDir, "--json"]);
    expect(out.status).toBe(0);
    expect(out.stderr).toBe("");
    expect(JSON.parse(out.stdout)).toEqual({
      version: 1,
      dir: join(cacheDir, "baselines", first),
      pathOrig: join(cacheDir, "baselines", first),
      commit: first,
      rev: first.slice(0, 7),
      source: `explicit base ${first}`,
      persistent: true,
      cache: "built",
    });
  });

  it("uses CAS_STAGE_CACHE_DIR as the default cache dir, and a temp dir with --no-cache", () => {
    const { repo, first } = originAndClone();
    const cacheDir = makeTempDir("cache");
    const cached = run(["--path", repo.dir], { env: { CAS_STAGE_CACHE_DIR: cacheDir } });
    expect(cached.stdout).toBe(`${join(cacheDir, "baselines", first)}\n`);
    const temp = run(["--path", repo.dir, "--no-cache", "--json"], {
      env: { CAS_STAGE_CACHE_DIR: cacheDir },
    });
    const result = JSON.parse(temp.stdout) as { dir: string; cache: string; persistent: boolean };
    expect(result).toMatchObject({ cache: "temp", persistent: false });
    rmSync(result.dir, { recursive: true });
    const plain = run(["--path", repo.dir, "--no-cache"]);
    expect(plain.stderr).toContain("not cached");
    rmSync(plain.stdout.trimEnd(), { recursive: true });
  });

  it("reports errors as one line without a stack trace and exits 1; usage errors exit 2", () => {
    const plain = makeTempDir("plain");
    const out = run(["--path", plain, "--no-cache"]);
    expect(out.status).toBe(1);
    expect(out.stdout).toBe("");
    expect(out.stderr).toBe(
      `cas-baseline: path ${plain} is not inside a git working tree; run from a checkout or pass a path inside one\n` +
        "  caused by: fatal: not a git repository (or any of the parent directories): .git\n",
    );
    for (const args of [
      ["--bogus"],
      ["--no-cache", "--cache-dir", plain],
      ["extra"],
      ["prune", "--older-than", "soon"],
      ["prune", "--older-than", "7"],
    ]) {
      const usage = run(args);
      expect(usage.status, args.join(" ")).toBe(2);
      expect(usage.stderr).toMatch(
        /^cas-baseline: .+\nusage: cas-baseline .+\nrun 'cas-baseline help.*' for more\n$/,
      );
      expect(usage.stderr).not.toContain("    at ");
    }
  });

  it("documents every command in --help and every option in help <command>", () => {
    const out = run(["--help"]);
    expect(out.status).toBe(0);
    for (const word of ["materialize", "prune", "ls", "rm", "clean", "verify", "--cache-dir", "--json"]) {
      expect(out.stdout).toContain(word);
    }
    const materialize = run(["help", "materialize"]);
    for (const flag of ["--path", "--base", "--cache-dir", "--no-cache", "CAS_STAGE_CACHE_DIR"]) {
      expect(materialize.stdout).toContain(flag);
    }
    const prune = run(["help", "prune"]);
    for (const flag of ["--older-than", "--max-size", "--min-age", "--dry-run"]) {
      expect(prune.stdout).toContain(flag);
    }
  });

  it("prunes slots older than the given duration", () => {
    const { repo, first } = originAndClone();
    const cacheDir = makeTempDir("cache");
    run(["--path", repo.dir, "--cache-dir", cacheDir]);
    const slot = join(cacheDir, "baselines", first);
    const kept = run(["prune", "--older-than", "7d", "--cache-dir", cacheDir]);
    expect(kept).toMatchObject({ status: 0, stdout: "" });
    const longAgo = new Date(Date.now() - 8 * 24 * 3600 * 1000);
    setLastUse(slot, longAgo);
    mkdirSync(join(cacheDir, "baselines", "keep-me"));
    const pruned = run(["prune", "--older-than", "7d", "--cache-dir", cacheDir]);
    expect(pruned.status).toBe(0);
    expect(pruned.stdout).toBe(`${slot}\n`);
    expect(pruned.stderr).toBe(
      `cas-baseline: removed 1 baseline, freed 13 B; 0 B of baselines remain in ${join(cacheDir, "baselines")}\n`,
    );
    expect(cacheNames(cacheDir)).toEqual(["keep-me"]);
  });
});

/** A cache with baselines of `first` (built by the CLI) and of a second commit, and where they are. */
function cacheWithTwo() {
  const { repo, first } = originAndClone();
  repo.write("src/app.txt", "app v2\n");
  const second = repo.commit("second");
  const cacheDir = makeTempDir("cache");
  for (const base of [first, second]) {
    expect(run(["--path", repo.dir, "--base", base, "--cache-dir", cacheDir]).status).toBe(0);
  }
  const slot = (commit: string) => join(cacheDir, "baselines", commit);
  return { repo, first, second, cacheDir, slot };
}

const MINUTE = 60_000;

describe("cas-baseline conventions", () => {
  it("prints its version with -V and --version", () => {
    const version = (
      JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
    ).version;
    for (const flag of ["-V", "--version"]) {
      expect(run([flag])).toEqual({ status: 0, stdout: `${version}\n`, stderr: "" });
    }
  });

  it("takes options before the command, and names the command in a usage error", () => {
    const { cacheDir, first } = cacheWithTwo();
    const listed = run(["--cache-dir", cacheDir, "--json", "ls"]);
    expect(listed.status).toBe(0);
    expect((JSON.parse(listed.stdout) as { entries: unknown[] }).entries).toHaveLength(2);
    const usage = run(["rm", first, "--bogus"]);
    expect(usage).toEqual({
      status: 2,
      stdout: "",
      stderr:
        "cas-baseline: Unknown option '--bogus'\nusage: cas-baseline rm <commit> [--force]\nrun 'cas-baseline help rm' for more\n",
    });
    expect(run(["rm"]).stderr).toBe(
      "cas-baseline: missing argument\nusage: cas-baseline rm <commit> [--force]\nrun 'cas-baseline help rm' for more\n",
    );
    expect(JSON.parse(run(["ls", "--json", "--max-size", "1"]).stdout)).toMatchObject({
      version: 1,
      error: { code: "EUSAGE" },
    });
  });

  it("prints absolute paths for a relative --cache-dir", () => {
    const { repo, first } = originAndClone();
    const cwd = makeTempDir("cwd");
    const built = run(["--path", repo.dir, "--cache-dir", "cache"], { cwd });
    expect(built.stdout).toBe(`${join(cwd, "cache", "baselines", first)}\n`);
    const listed = JSON.parse(run(["ls", "--cache-dir", "cache", "--json"], { cwd }).stdout);
    expect(listed.root).toBe(join(cwd, "cache", "baselines"));
    expect(listed.entries[0].path).toBe(join(cwd, "cache", "baselines", first));
  });

  it("reports a failure as JSON under --json, with its code and path", () => {
    const plain = makeTempDir("plain");
    const failed = run(["--path", plain, "--no-cache", "--json"]);
    expect(failed.status).toBe(1);
    expect(failed.stderr).toBe("");
    expect(JSON.parse(failed.stdout)).toEqual({
      version: 1,
      error: {
        code: "ENOTGITREPO",
        message: expect.stringContaining("is not inside a git working tree"),
        path: plain,
      },
    });
  });

  it("exits 141 without a word when the reader of ls goes away (1,500 baselines)", () => {
    const { cacheDir, first, slot } = cacheWithTwo();
    // Copies of one real slot under other names: ls lists each as a baseline.
    for (let i = 0; i < 1500; i++) {
      cpSync(slot(first), slot(i.toString(16).padStart(40, "a")), {
        recursive: true,
        preserveTimestamps: true,
      });
    }
    for (const extra of ["", " --json"]) {
      const shell = spawnSync(
        "bash",
        [
          "-c",
          `"${process.execPath}" "${CLI}" ls --cache-dir "${cacheDir}"${extra} 2>"${cacheDir}.err" | head -1; echo "exit \${PIPESTATUS[0]}"`,
        ],
        { encoding: "utf8" },
      );
      const [firstLine, exit] = shell.stdout.trimEnd().split("\n");
      expect(firstLine, extra).toMatch(extra ? /^\{$/ : /[0-9a-f]{40}/);
      expect(exit, extra).toBe("exit 141");
      expect(readFileSync(`${cacheDir}.err`, "utf8"), extra).toBe("");
    }
  }, 60_000);
});

describe("cas-baseline ls, prune, rm, clean, verify", () => {
  it("ls prints one line per baseline (most recent first) on stdout, the summary and debris on stderr", () => {
    const { cacheDir, first, second, slot } = cacheWithTwo();
    setLastUse(slot(first), new Date(Date.now() - 3 * 3600_000));
    const listed = run(["ls", "--cache-dir", cacheDir]);
    expect(listed.status).toBe(0);
    const lines = listed.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^ +\\d+ B {2}\\d+ s ago +${second} {2}${slot(second)}$`));
    expect(lines[1]).toMatch(new RegExp(`^ +\\d+ B {2}3 h ago +${first} {2}${slot(first)}$`));
    expect(listed.stderr).toMatch(/^cas-baseline: 2 baselines, \d+ B in .*\/baselines\n$/);

    const temp = join(cacheDir, "baselines", ".staging", `${first}.tmp.abcDEF`);
    mkdirSync(temp, { recursive: true });
    writeFileSync(join(temp, "half.txt"), "12345");
    const old = new Date(Date.now() - 2 * 86_400_000);
    utimesSync(temp, old, old);
    expect(run(["ls", "--cache-dir", cacheDir]).stderr).toContain(
      "cas-baseline: debris: 1 item, 5 B (1 stale, 5 B: run 'cas-baseline clean')\n",
    );
    const json = run(["ls", "--cache-dir", cacheDir, "--json"]);
    expect(json.stderr).toBe("");
    expect(JSON.parse(json.stdout)).toEqual({
      version: 1,
      root: join(cacheDir, "baselines"),
      entries: [second, first].map((commit) => ({
        commit,
        path: slot(commit),
        bytes: expect.any(Number),
        files: 2,
        lastUsed: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      })),
      debris: [{ kind: "temp", path: temp, bytes: 5, stale: true }],
      totalBytes: expect.any(Number),
      debrisBytes: 5,
    });
  });

  it("prune --max-size removes the least recently used, never within --min-age; --dry-run only says", () => {
    const { cacheDir, first, second, slot } = cacheWithTwo();
    setLastUse(slot(first), new Date(Date.now() - 60 * MINUTE));
    const dry = run(["prune", "--max-size", "1", "--min-age", "30m", "--dry-run", "--cache-dir", cacheDir]);
    expect(dry.status).toBe(0);
    expect(dry.stdout).toBe(`${slot(first)}\n`);
    expect(dry.stderr).toMatch(
      /^cas-baseline: would remove 1 baseline, freeing \d+ B; \d+ B of baselines remain/,
    );
    expect(cacheNames(cacheDir)).toEqual([first, second].sort());
    const pruned = run(["prune", "--max-size", "1", "--min-age", "30m", "--cache-dir", cacheDir, "--json"]);
    expect(JSON.parse(pruned.stdout)).toEqual({
      version: 1,
      dryRun: false,
      removed: [expect.objectContaining({ commit: first, path: slot(first), files: 2 })],
      debris: [],
      repaired: [],
      freedBytes: expect.any(Number),
      remainingBytes: expect.any(Number),
    });
    expect(cacheNames(cacheDir)).toEqual([second]);
  });

  it("prune without a limit removes only debris and says so", () => {
    const { cacheDir, first, second } = cacheWithTwo();
    const pruned = run(["prune", "--cache-dir", cacheDir]);
    expect(pruned.status).toBe(0);
    expect(pruned.stderr).toContain("no limit given (--older-than, --max-size): no baseline was removed");
    expect(cacheNames(cacheDir)).toEqual([first, second].sort());
  });

  it("rm removes one baseline by a prefix, keeps a recently used one unless --force", () => {
    const { cacheDir, first, second, slot } = cacheWithTwo();
    setLastUse(slot(first), new Date(Date.now() - 60 * MINUTE));
    const removed = run(["rm", first.slice(0, 10), "--cache-dir", cacheDir]);
    expect(removed).toMatchObject({ status: 0, stdout: `${slot(first)}\n` });
    expect(removed.stderr).toMatch(new RegExp(`^cas-baseline: removed baseline ${first}, \\d+ B\\n$`));
    const busy = run(["rm", second, "--cache-dir", cacheDir]);
    expect(busy.status).toBe(1);
    expect(busy.stderr).toMatch(
      /was used \d+ s ago, within the minimum age .*; pass --force to remove it anyway/,
    );
    expect(JSON.parse(run(["rm", second, "--cache-dir", cacheDir, "--json"]).stdout)).toMatchObject({
      version: 1,
      error: { code: "EBUSY", path: slot(second) },
    });
    const forced = JSON.parse(run(["rm", second, "--force", "--cache-dir", cacheDir, "--json"]).stdout);
    expect(forced).toEqual({
      version: 1,
      removed: {
        commit: second,
        path: slot(second),
        bytes: expect.any(Number),
        files: 2,
        lastUsed: expect.any(String),
      },
    });
    expect(cacheNames(cacheDir)).toEqual([]);
    expect(JSON.parse(run(["rm", second, "--cache-dir", cacheDir, "--json"]).stdout).error.code).toBe(
      "ENOENT",
    );
  });

  it("clean removes only stale debris; --dry-run first says what it would remove", () => {
    const { cacheDir, first, second } = cacheWithTwo();
    const staging = join(cacheDir, "baselines", ".staging");
    const stale = join(staging, `${first}.tmp.AAAAAA`);
    const fresh = join(staging, `${second}.tmp.BBBBBB`);
    for (const [dir, text] of [
      [stale, "123"],
      [fresh, "4567"],
    ] as const) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "f"), text);
    }
    const old = new Date(Date.now() - 2 * 86_400_000);
    utimesSync(stale, old, old);
    expect(run(["clean", "--dry-run", "--cache-dir", cacheDir])).toEqual({
      status: 0,
      stdout: `${stale}\n`,
      stderr: `cas-baseline: would remove 1 piece of debris, freeing 3 B in ${join(cacheDir, "baselines")}\n`,
    });
    expect(existsSync(stale)).toBe(true);
    expect(JSON.parse(run(["clean", "--cache-dir", cacheDir, "--json"]).stdout)).toEqual({
      version: 1,
      dryRun: false,
      removed: [{ kind: "temp", path: stale, bytes: 3, stale: true }],
      repaired: [],
      freedBytes: 3,
    });
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    expect(run(["clean", "--older-than", "0", "--cache-dir", cacheDir]).stdout).toBe(`${fresh}\n`);
    expect(cacheNames(cacheDir)).toEqual([first, second].sort());
  });

  it("verify checks against the repository of the current directory or --repo, names the first differing path, --fix moves it aside", () => {
    const { repo, cacheDir, first, second, slot } = cacheWithTwo();
    const whole = run(["verify", "--cache-dir", cacheDir], { cwd: repo.dir });
    expect(whole).toMatchObject({ status: 0, stdout: "" });
    expect(whole.stderr).toBe(
      `cas-baseline: checked 2 baselines (${whole.stderr.match(/\((\d+ B)\)/)?.[1]}) against git (${repo.dir}): all whole\n`,
    );
    // A relative --repo is shown absolute, as every path.
    expect(run(["verify", "--cache-dir", cacheDir, "--repo", "."], { cwd: repo.dir }).stderr).toBe(
      whole.stderr,
    );
    writeFileSync(join(slot(second), "src", "app.txt"), "tampered\n");
    const bad = run(["verify", "--cache-dir", cacheDir, "--repo", repo.dir]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(new RegExp(`^${second} {2}content src/app.txt`));
    expect(bad.stderr).toContain("1 bad (run 'cas-baseline verify --fix' to move them aside)");
    // Outside a repository, against the manifests the builds recorded: the same finding.
    const byManifest = JSON.parse(
      run(["verify", "--cache-dir", cacheDir, "--json"], { cwd: makeTempDir("x") }).stdout,
    );
    expect(byManifest).toMatchObject({ version: 1, bad: 1, fixed: 0 });
    const badEntry = byManifest.entries.find((entry: { status: string }) => entry.status === "bad");
    expect(badEntry).toMatchObject({
      commit: second,
      against: "manifest",
      difference: { path: "src/app.txt" },
    });
    const fixed = JSON.parse(
      run(["verify", "--fix", "--cache-dir", cacheDir, "--json"], { cwd: repo.dir }).stdout,
    );
    expect(fixed).toMatchObject({ version: 1, bad: 1, fixed: 1 });
    expect(cacheNames(cacheDir)).toEqual([first]);
    expect(run(["verify", "--cache-dir", cacheDir], { cwd: repo.dir }).status).toBe(0);
  });
});

describe("cas-baseline interrupted mid-build", () => {
  // Symlinks are written last, one at a time by the CLI's own process, each reported to the progress line;
  // strace delays each by 5 ms, so writing 600 of them takes seconds. The first progress line (drawn after
  // half a second, on a report) therefore comes with most of the symlinks still to write: a state barrier
  // that puts the signal mid-build however loaded the machine is.
  const SLOW = [
    "-e",
    "trace=symlink,symlinkat",
    "-e",
    "inject=symlink:delay_enter=5000",
    "-e",
    "inject=symlinkat:delay_enter=5000",
  ];

  /** A clone whose HEAD holds 200 files and `links` symlinks. */
  function cloneWithLinks(links: number): { repo: TestRepo } {
    const { repo } = originAndClone();
    for (let i = 0; i < 200; i++) repo.write(`d${i % 10}/f${i}.txt`, `file ${i}\n`);
    for (let d = 0; d < 10; d++) mkdirSync(join(repo.dir, `links${d}`));
    for (let i = 0; i < links; i++) {
      symlinkSync(`../d${i % 10}/f${i % 200}.txt`, join(repo.dir, `links${i % 10}`, `l${i}`));
    }
    repo.commit("files and links");
    return { repo };
  }

  for (const [signal, exit] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    kernelTest(
      "strace",
      `stops on ${signal}, clears its progress line, leaves nothing behind (cache or --no-cache), exits ${exit}`,
      async () => {
        const { repo } = cloneWithLinks(600);
        const cacheDir = makeTempDir("cache");
        for (const [mode, args] of [
          ["cache", ["--cache-dir", cacheDir]],
          ["no-cache", ["--no-cache"]],
        ] as const) {
          const build = new CliProcess(CLI, ["--path", repo.dir, "--base", "HEAD", ...args, "--progress"], {
            strace: SLOW,
          });
          await build.waitForStderr(/writing \d/);
          await build.kill(signal);
          const { code, stdout, stderr } = await build.exited;
          expect(code, mode).toBe(exit);
          expect(stdout, mode).toBe("");
          expect(stderr.endsWith(`\r\u001b[Kcas-baseline: interrupted by ${signal}\n`), mode).toBe(true);
          expect(
            readdirSync(testTmpDir).filter((name) => name.startsWith("cas-baseline-")),
            mode,
          ).toEqual([]);
          if (mode === "cache") expect(cacheNames(cacheDir), mode).toEqual([]);
        }
      },
      120_000,
    );
  }
});
