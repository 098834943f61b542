import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll } from "vitest";
import { SENTINEL } from "../src/layout.js";

const made: string[] = [];

/** A fresh directory under the OS temp dir, removed by {@link removeTempDirs}. */
export function makeTempDir(label = "test"): string {
  const dir = mkdtempSync(join(tmpdir(), `fixture-${label}-`));
  made.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/**
 * Keeps the machine's git configuration out of the tests: a private HOME (global config) and no system
 * config for the git commands the tests run. The library strips GIT_* variables, so HOME is what isolates
 * it. Also points the OS temp dir at a private directory, so tests can check it for debris.
 */
const sandbox = mkdtempSync(join(tmpdir(), "cas-baseline-sandbox-"));
const home = join(sandbox, "home");
const privateTmp = join(sandbox, "tmp");
mkdirSync(home);
mkdirSync(privateTmp);
process.env.HOME = home;
process.env.XDG_CONFIG_HOME = join(home, ".config");
process.env.TMPDIR = privateTmp;
process.env.GIT_CONFIG_NOSYSTEM = "1";
// Registered from the test file that imports this module: vitest workers do not emit "exit".
afterAll(() => rmSync(sandbox, { recursive: true, force: true }));

/** The private OS temp dir of this test file. */
export const testTmpDir = privateTmp;

const gitEnv = () => ({
  ...process.env,
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_AUTHOR_DATE: "2024-01-01T00:00:00Z",
  GIT_COMMITTER_DATE: "2024-01-01T00:00:00Z",
});

/** Runs git in `cwd` and returns stdout as bytes. */
export function gitBytes(cwd: string, args: string[], input?: Buffer | string): Buffer {
  return execFileSync("git", args, { cwd, env: gitEnv(), input, stdio: ["pipe", "pipe", "pipe"] });
}

/** Runs git in `cwd` and returns trimmed stdout. */
export function git(cwd: string, ...args: string[]): string {
  return gitBytes(cwd, args).toString("utf8").trim();
}

/** Deterministic configuration every test repository gets. */
function configure(dir: string): void {
  git(dir, "config", "user.name", "Test");
  git(dir, "config", "user.email", "test@example.com");
  git(dir, "config", "gc.auto", "0");
  git(dir, "config", "commit.gpgsign", "false");
  git(dir, "config", "core.autocrlf", "false");
}

export interface TestRepo {
  dir: string;
  git: (...args: string[]) => string;
  /** Writes a file (creating its directories); `mode` e.g. 0o755. */
  write: (path: string, content: string | Buffer, mode?: number) => void;
  /** Stages everything and commits; returns the commit SHA. */
  commit: (message: string) => string;
}

/** A non-bare repository on branch `main`, with an identity, gc off, signing off. */
export function gitRepo(dir = makeTempDir("repo")): TestRepo {
  execFileSync("git", ["init", "--quiet", "--initial-branch=main", dir], { env: gitEnv() });
  configure(dir);
  return wrap(dir);
}

function wrap(dir: string): TestRepo {
  return {
    dir,
    git: (...args) => git(dir, ...args),
    write: (path, content, mode) => {
      const file = join(dir, path);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, content);
      if (mode !== undefined) chmodSync(file, mode);
    },
    commit: (message) => {
      git(dir, "add", "--all");
      git(dir, "commit", "--quiet", "--allow-empty", "-m", message);
      return git(dir, "rev-parse", "HEAD");
    },
  };
}

/** A bare `origin` and a clone of it, with one commit pushed to origin/main. */
export function originAndClone(): { origin: string; repo: TestRepo; first: string } {
  const origin = join(makeTempDir("origin"), "origin.git");
  execFileSync("git", ["init", "--quiet", "--bare", "--initial-branch=main", origin], { env: gitEnv() });
  const seed = gitRepo();
  seed.write("README.md", "first\n");
  seed.write("src/app.txt", "app v1\n");
  const first = seed.commit("first");
  seed.git("remote", "add", "origin", origin);
  seed.git("push", "--quiet", "origin", "main");
  const cloneDir = join(makeTempDir("clone"), "work");
  execFileSync("git", ["clone", "--quiet", origin, cloneDir], { env: gitEnv() });
  configure(cloneDir);
  return { origin, repo: wrap(cloneDir), first };
}

/**
 * Everything observable about a repository: every file and symlink under it (including `.git`) with a hash
 * of its content and its mode, plus refs, object count, config and status as git reports them (with
 * `--no-optional-locks`, so that taking the snapshot does not itself rewrite the index).
 */
export function snapshotRepo(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (path: string, rel: string) => {
    for (const name of readdirSync(path)) {
      const full = join(path, name);
      const key = rel ? `${rel}/${name}` : name;
      const stats = lstatSync(full);
      if (stats.isDirectory()) {
        files[`${key}/`] = "dir";
        walk(full, key);
      } else if (stats.isSymbolicLink()) {
        files[key] = `link ${readlinkSync(full)}`;
      } else {
        files[key] =
          `${stats.mode.toString(8)} ${createHash("sha256").update(readFileSync(full)).digest("hex")}`;
      }
    }
  };
  walk(dir, "");
  const quiet = (...args: string[]) => git(dir, "--no-optional-locks", ...args);
  files["(refs)"] = quiet("for-each-ref");
  files["(objects)"] = quiet("count-objects", "-v");
  files["(config)"] = quiet("config", "--list", "--local");
  files["(status)"] = quiet("status", "--porcelain", "--ignored");
  return files;
}

/** Sets when the cache slot `slot` was last used (its sentinel's mtime), as a hit would. */
export function setLastUse(slot: string, when: Date): void {
  utimesSync(join(slot, SENTINEL), when, when);
}

/** What `<cacheRoot>/baselines` holds besides its (empty) staging and trash dirs, sorted. */
export function cacheNames(cacheRoot: string): string[] {
  const names = readdirSync(join(cacheRoot, "baselines")).sort();
  for (const own of [".staging", ".trash"]) {
    if (names.includes(own) && readdirSync(join(cacheRoot, "baselines", own)).length === 0) {
      names.splice(names.indexOf(own), 1);
    }
  }
  return names;
}

/**
 * Every byte under `dir` (a repository, `.git` included), without running git: each file's mode, mtime and
 * content hash, each symlink's target, each directory. A write of any kind, even of identical bytes,
 * changes it.
 */
export function snapshotFiles(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (path: string, rel: string) => {
    for (const name of readdirSync(path)) {
      const full = join(path, name);
      const key = rel ? `${rel}/${name}` : name;
      const stats = lstatSync(full);
      if (stats.isDirectory()) {
        files[`${key}/`] = "dir";
        walk(full, key);
      } else if (stats.isSymbolicLink()) {
        files[key] = `link ${readlinkSync(full)}`;
      } else {
        const hash = createHash("sha256").update(readFileSync(full)).digest("hex");
        files[key] = `${stats.mode.toString(8)} ${stats.mtimeMs} ${hash}`;
      }
    }
  };
  walk(dir, "");
  return files;
}

/** The relative paths of every entry under `dir`, sorted, directories with a trailing `/`. */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (path: string, rel: string) => {
    for (const name of readdirSync(path)) {
      const key = rel ? `${rel}/${name}` : name;
      const stats = lstatSync(join(path, name));
      if (stats.isDirectory()) {
        out.push(`${key}/`);
        walk(join(path, name), key);
      } else out.push(key);
    }
  };
  walk(dir, "");
  return out.sort();
}

/** Writes a blob and returns its SHA. */
export function hashBlob(cwd: string, content: string | Buffer): string {
  return gitBytes(cwd, ["hash-object", "-w", "--stdin"], content).toString().trim();
}

/**
 * Writes a tree object from raw entries, bypassing every check of `git mktree` (`hash-object --literally`),
 * as a hostile server could. `name` is used as given, bytes included.
 */
export function rawTree(
  cwd: string,
  entries: { mode: string; name: string | Buffer; oid: string }[],
): string {
  const body = Buffer.concat(
    entries.flatMap((entry) => [
      Buffer.from(`${entry.mode} `),
      Buffer.isBuffer(entry.name) ? entry.name : Buffer.from(entry.name),
      Buffer.from([0]),
      Buffer.from(entry.oid, "hex"),
    ]),
  );
  return gitBytes(cwd, ["hash-object", "-w", "-t", "tree", "--literally", "--stdin"], body).toString().trim();
}

/** A commit of `tree` on top of HEAD (not on any branch); returns its SHA. */
export function commitTree(cwd: string, tree: string): string {
  return git(cwd, "commit-tree", tree, "-p", "HEAD", "-m", "crafted");
}
