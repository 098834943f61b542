import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { makeTempDir, originAndClone, removeTempDirs } from "./fixtures.js";

afterEach(removeTempDirs);

const CLI = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const REAL_GIT = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim();

/**
 * A `git` first on PATH that says it is 2.30.2 and otherwise runs the real git; with `oldRevParse`, it also
 * answers `rev-parse --path-format=absolute` as git before 2.31 did, echoing the unknown option.
 */
function oldGit(oldRevParse: boolean): string {
  const dir = makeTempDir("old-git");
  const revParse = oldRevParse
    ? `if [ "$1" = rev-parse ]; then
  for a do shift; if [ "$a" = "--path-format=absolute" ]; then echo "$a"; else set -- "$@" "$a"; fi; done
  set -- rev-parse "$@"
fi
`
    : "";
  writeFileSync(
    join(dir, "git"),
    `#!/bin/sh\ncase "$1" in version|--version) echo "git version 2.30.2"; exit 0;; esac\n${revParse}exec "${REAL_GIT}" "$@"\n`,
  );
  chmodSync(join(dir, "git"), 0o755);
  return dir;
}

function run(args: string[], path: string) {
  return spawnSync(process.execPath, [CLI, ...args], {
    env: { ...process.env, PATH: path ? `${path}:${process.env.PATH}` : process.env.PATH },
    encoding: "utf8",
  });
}

describe("the minimum git version", () => {
  it("refuses git older than 2.31 with EGITVERSION before building", () => {
    const { repo } = originAndClone();
    const out = run(["--path", repo.dir, "--cache-dir", makeTempDir("cache"), "--json"], oldGit(false));
    expect(out.status).toBe(1);
    expect(out.stderr).toContain("git version 2.30.2 is too old");
    expect(out.stderr).toContain("git 2.31 or later");
  });

  it("notices a git too old for rev-parse --path-format even on a cache hit", () => {
    const { repo } = originAndClone();
    const cacheDir = makeTempDir("cache");
    expect(run(["--path", repo.dir, "--cache-dir", cacheDir], "").status).toBe(0);
    const out = run(["--path", repo.dir, "--cache-dir", cacheDir], oldGit(true));
    expect(out.status).toBe(1);
    expect(out.stderr).toContain("git version 2.30.2 is too old");
  });
});
