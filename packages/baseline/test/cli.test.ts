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
    expect(JSON.parse(out.stdout)).toEqual({
      dir: join(cacheDir, "baselines", first),
      pathOrig: join(cacheDir, "baselines", first),
      commit: first,
      rev: first.slice(0, 7),
      source: `explicit --base=${first}`,
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
    expect(temp.stderr).toContain("not cached");
    rmSync(result.dir, { recursive: true });
  });

  it("reports errors as one line without a stack trace and exits 1", () => {
    const plain = makeTempDir("plain");
    const out = run(["--path", plain, "--no-cache"]);
    expect(out.status).toBe(1);
    expect(out.stdout).toBe("");
    expect(out.stderr).toBe(
      `cas-baseline: path ${plain} is not inside a git working tree; run from a checkout or pass --path inside one\n`,
    );
    for (const args of [
      ["--bogus"],
      ["--no-cache", "--cache-dir", plain],
      ["extra"],
      ["prune"],
      ["prune", "--older-than", "soon"],
    ]) {
      const usage = run(args);
      expect(usage.status, args.join(" ")).toBe(1);
      expect(usage.stderr).toMatch(/^cas-baseline: .+\n$/);
      expect(usage.stderr).not.toContain("    at ");
    }
  });

  it("documents every flag in --help", () => {
    const out = run(["--help"]);
    expect(out.status).toBe(0);
    for (const flag of [
      "--path",
      "--base",
      "--cache-dir",
      "--no-cache",
      "--json",
      "prune",
      "--older-than",
      "CAS_STAGE_CACHE_DIR",
    ]) {
      expect(out.stdout).toContain(flag);
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
    expect(pruned.stderr).toBe(`cas-baseline: pruned 1 entry from ${cacheDir}\n`);
    expect(cacheNames(cacheDir)).toEqual(["keep-me"]);
  });
});
