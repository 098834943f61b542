import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bindReadOnly, chattr, kernelTest, unmount } from "@cas-stage/test-support/kernel";
import { afterEach, describe, expect, it } from "vitest";
import { BaselineError, materializeBaseline } from "../src/index.js";
import {
  cacheNames,
  commitTree,
  gitRepo,
  hashBlob,
  listTree,
  makeTempDir,
  originAndClone,
  rawTree,
  removeTempDirs,
  testTmpDir,
} from "./fixtures.js";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  removeTempDirs();
});

async function failure(promise: Promise<unknown>): Promise<BaselineError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(BaselineError);
  return error as BaselineError;
}

describe("errors that say what happened", () => {
  it("calls a bare repository a bare repository (ENOTGITREPO)", async () => {
    const bare = join(makeTempDir("bare"), "repo.git");
    execFileSync("git", ["init", "--quiet", "--bare", bare]);
    const error = await failure(materializeBaseline({ path: bare }));
    expect(error.code).toBe("ENOTGITREPO");
    expect(error.message).toContain("bare repository");
  });

  it("quotes git's dubious-ownership refusal and says how to allow the repository (EUNSAFEREPO)", async () => {
    const repo = gitRepo();
    repo.write("a.txt", "a\n");
    const commit = repo.commit("a");
    execFileSync("chown", ["-R", "nobody", repo.dir]);
    const error = await failure(materializeBaseline({ path: repo.dir, base: commit }));
    expect(error.code).toBe("EUNSAFEREPO");
    expect(error.message).toContain("detected dubious ownership in repository");
    expect(error.message).toContain(`git config --global --add safe.directory ${repo.dir}`);
  });

  it("refuses a range as base (EUNKNOWNBASE) without making any temp dir", async () => {
    const { repo } = originAndClone();
    repo.write("b.txt", "b\n");
    repo.commit("second");
    const cacheRoot = makeTempDir("cache");
    const before = readdirSync(testTmpDir);
    for (const base of ["HEAD..HEAD~1", "HEAD~1...HEAD", "^HEAD"]) {
      const error = await failure(materializeBaseline({ path: repo.dir, base, cacheRoot }));
      expect(error.code, base).toBe("EUNKNOWNBASE");
      expect(error.message).toContain("names no single commit");
    }
    expect(readdirSync(testTmpDir)).toEqual(before);
    expect(listTree(cacheRoot)).toEqual([]);
  });

  for (const [label, target] of [
    ["empty", Buffer.alloc(0)],
    ["holding NUL", Buffer.from("a\0b")],
    ["longer than any system allows", Buffer.alloc(5000, "a")],
  ] as const) {
    it(`refuses a symlink whose target is ${label} (EBADTREE)`, async () => {
      const { repo } = originAndClone();
      const root = rawTree(repo.dir, [
        { mode: "100644", name: "fine.txt", oid: hashBlob(repo.dir, "fine\n") },
        { mode: "120000", name: "link", oid: hashBlob(repo.dir, target) },
      ]);
      const cacheRoot = makeTempDir("cache");
      const error = await failure(
        materializeBaseline({ path: repo.dir, base: commitTree(repo.dir, root), cacheRoot }),
      );
      expect(error.code).toBe("EBADTREE");
      expect(error.message).toContain("symlink link");
      expect(cacheNames(cacheRoot)).toEqual([]);
    });
  }
});

describe("a cache dir that cannot be written", () => {
  const hint = "pass a writable cache dir or set CAS_STAGE_CACHE_DIR";

  it("gives the filesystem's code and the hint when the cache root is not a directory", async () => {
    const { repo } = originAndClone();
    const file = join(makeTempDir("cache"), "a-file");
    writeFileSync(file, "not a directory");
    const error = await failure(materializeBaseline({ path: repo.dir, cacheRoot: join(file, "cache") }));
    expect(error.code).toBe("ENOTDIR");
    expect(error.message).toContain(hint);
  });

  kernelTest("chattr", "gives EPERM and the hint when the cache root is immutable", async () => {
    const { repo } = originAndClone();
    const cacheRoot = makeTempDir("cache");
    chattr("+i", cacheRoot);
    cleanups.push(() => chattr("-i", cacheRoot));
    const error = await failure(materializeBaseline({ path: repo.dir, cacheRoot }));
    expect(error.code).toBe("EPERM");
    expect(error.message).toContain(join(cacheRoot, "baselines"));
    expect(error.message).toContain(hint);
  });

  kernelTest("bindReadOnly", "gives EROFS and the hint when the baselines dir is read-only", async () => {
    const { repo } = originAndClone();
    const cacheRoot = makeTempDir("cache");
    mkdirSync(join(cacheRoot, "baselines"));
    bindReadOnly(join(cacheRoot, "baselines"));
    cleanups.push(() => unmount(join(cacheRoot, "baselines")));
    const error = await failure(materializeBaseline({ path: repo.dir, cacheRoot }));
    expect(error.code).toBe("EROFS");
    expect(error.message).toContain(hint);
  });
});
