import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { cacheNames, makeTempDir, originAndClone, removeTempDirs, setLastUse } from "./fixtures.js";

afterEach(removeTempDirs);

const CLI = fileURLToPath(new URL("../dist/cli.js", import.meta.url));

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
      `cas-baseline: path ${plain} is not inside a git working tree; run from a checkout or pass --path inside one\n` +
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
      expect(usage.stderr).toMatch(/^cas-baseline: .+\n$/);
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
