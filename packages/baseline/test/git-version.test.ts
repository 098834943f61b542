import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { makeTempDir, originAndClone, removeTempDirs } from "./fixtures.js";

afterEach(removeTempDirs);

const CLI = fileURLToPath(new URL("../bin/cas-baseline.js", import.meta.url));
const REAL_GIT = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim();

/**
 * A `git` first on PATH that behaves as git 2.30 does where it matters: it says it is 2.30.2, and
 * `rev-parse` echoes the `--path-format=absolute` option it does not know instead of obeying it.
 */
function oldGit(): string {
  const dir = makeTempDir("old-git");
  writeFileSync(
    join(dir, "git"),
    `#!/bin/sh
case "$1" in version|--version) echo "git version 2.30.2"; exit 0;; esac
if [ "$1" = rev-parse ]; then
  for a do shift; if [ "$a" = "--path-format=absolute" ]; then echo "$a"; else set -- "$@" "$a"; fi; done
  set -- rev-parse "$@"
fi
exec "${REAL_GIT}" "$@"
`,
  );
  chmodSync(join(dir, "git"), 0o755);
  return dir;
}

function run(args: string[], path?: string) {
  return spawnSync(process.execPath, [CLI, ...args], {
    env: { ...process.env, PATH: path ? `${path}:${process.env.PATH}` : process.env.PATH },
    encoding: "utf8",
  });
}

describe("the minimum git version", () => {
  it("refuses git older than 2.31 with EGITVERSION, naming the version, before building", () => {
    const { repo } = originAndClone();
    const cacheDir = makeTempDir("cache");
    const out = run(["--path", repo.dir, "--cache-dir", cacheDir], oldGit());
    expect(out.status).toBe(1);
    expect(out.stderr).toContain("git version 2.30.2 is too old");
    expect(out.stderr).toContain("git 2.31 or later");
    expect(readdirSync(cacheDir)).toEqual([]);
  });

  it("notices it on a cache hit too, where it costs no extra git process", () => {
    const { repo } = originAndClone();
    const cacheDir = makeTempDir("cache");
    expect(run(["--path", repo.dir, "--cache-dir", cacheDir]).status).toBe(0);
    const out = run(["--path", repo.dir, "--cache-dir", cacheDir], oldGit());
    expect(out.status).toBe(1);
    expect(out.stderr).toContain("git version 2.30.2 is too old");
  });
});
