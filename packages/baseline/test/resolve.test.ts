import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BaselineError, findRepoRoot, materializeBaseline } from "../src/index.js";
import {
  git,
  gitRepo,
  makeTempDir,
  originAndClone,
  removeTempDirs,
  snapshotRepo,
  testTmpDir,
} from "./fixtures.js";

afterEach(removeTempDirs);

async function failure(promise: Promise<unknown>): Promise<BaselineError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(BaselineError);
  return error as BaselineError;
}

describe("base selection", () => {
  it("picks the merge-base with the upstream first", async () => {
    const { repo, first } = originAndClone();
    repo.write("src/app.txt", "app v2\n");
    repo.commit("local change");
    const result = await materializeBaseline({ path: repo.dir });
    expect(result.source).toBe("merge-base with @{u}");
    expect(result.commit).toBe(first);
    expect(result.rev).toBe(first.slice(0, 7));
  });

  it("abbreviates the commit as git does, honouring core.abbrev", async () => {
    const { repo, first } = originAndClone();
    repo.git("config", "core.abbrev", "12");
    const result = await materializeBaseline({ path: repo.dir, base: first });
    expect(result.rev).toBe(first.slice(0, 12));
    expect(result.rev).toBe(git(repo.dir, "rev-parse", "--short", first));
  });

  it("falls back to origin/HEAD when the branch has no upstream", async () => {
    const { repo, first } = originAndClone();
    repo.git("checkout", "--quiet", "-b", "feature", "--no-track");
    repo.commit("feature work");
    const result = await materializeBaseline({ path: repo.dir });
    expect(result).toMatchObject({ source: "merge-base with origin/HEAD", commit: first });
  });

  it("falls back to origin/main, then origin/master", async () => {
    const { repo, first } = originAndClone();
    repo.git("checkout", "--quiet", "-b", "feature", "--no-track");
    repo.git("remote", "set-head", "origin", "--delete");
    expect((await materializeBaseline({ path: repo.dir })).source).toBe("merge-base with origin/main");

    repo.git("update-ref", "refs/remotes/origin/master", first);
    repo.git("update-ref", "-d", "refs/remotes/origin/main");
    const result = await materializeBaseline({ path: repo.dir });
    expect(result).toMatchObject({ source: "merge-base with origin/master", commit: first });
  });

  it("takes an explicit base that resolves locally", async () => {
    const { repo, first } = originAndClone();
    repo.git("tag", "v1", first);
    repo.commit("next");
    const result = await materializeBaseline({ path: repo.dir, base: "v1" });
    expect(result).toMatchObject({ source: "explicit base v1", commit: first });
  });

  it("takes an explicit base as origin/<base> when only the remote branch exists", async () => {
    const { repo, origin } = originAndClone();
    const other = gitRepo();
    other.git("remote", "add", "origin", origin);
    other.git("fetch", "--quiet", "origin");
    other.git("checkout", "--quiet", "-b", "release", "origin/main");
    other.write("release.txt", "r\n");
    const release = other.commit("release");
    other.git("push", "--quiet", "origin", "release");
    repo.git("fetch", "--quiet", "origin");
    const result = await materializeBaseline({ path: repo.dir, base: "release" });
    expect(result).toMatchObject({ source: "explicit base release (via origin/release)", commit: release });
  });

  it("fetches an explicit base from origin into a throwaway repository, leaving the repository unchanged", async () => {
    const { repo, origin } = originAndClone();
    const other = gitRepo();
    other.git("remote", "add", "origin", origin);
    other.git("fetch", "--quiet", "origin");
    other.git("checkout", "--quiet", "-b", "hotfix", "origin/main");
    other.write("hotfix.txt", "fixed\n");
    const hotfix = other.commit("hotfix");
    other.git("push", "--quiet", "origin", "hotfix");

    repo.git("config", "core.abbrev", "10");
    const before = snapshotRepo(repo.dir);
    const result = await materializeBaseline({ path: repo.dir, base: "hotfix" });
    expect(result).toMatchObject({ source: "explicit base hotfix (fetched from origin)", commit: hotfix });
    // Abbreviated by the user's git (core.abbrev), although the repository itself lacks the commit.
    expect(result.rev).toBe(hotfix.slice(0, 10));
    expect(snapshotRepo(repo.dir)).toEqual(before);
    expect(readdirSync(testTmpDir).filter((name) => name.startsWith("cas-baseline-fetch-"))).toEqual([]);
  });

  it("never changes the repository on the auto-detection path", async () => {
    const { repo } = originAndClone();
    repo.write("src/app.txt", "app v2\n");
    repo.commit("local change");
    repo.write("dirty.txt", "uncommitted\n");
    const before = snapshotRepo(repo.dir);
    const cacheRoot = makeTempDir("cache");
    await materializeBaseline({ path: repo.dir, cacheRoot });
    await materializeBaseline({ path: repo.dir, cacheRoot });
    await materializeBaseline({ path: repo.dir });
    expect(snapshotRepo(repo.dir)).toEqual(before);
  });

  it("works in a linked worktree, whose .git is a file", async () => {
    const { repo, first } = originAndClone();
    const worktree = join(makeTempDir("worktree"), "wt");
    repo.git("worktree", "add", "--quiet", "-b", "wt-branch", worktree, "origin/main");
    mkdirSync(join(worktree, "src", "deep"), { recursive: true });
    expect(await findRepoRoot(join(worktree, "src"))).toBe(worktree);
    const result = await materializeBaseline({ path: join(worktree, "src"), base: "origin/main" });
    expect(result).toMatchObject({ commit: first, pathOrig: join(result.dir, "src") });
  });
});

describe("findRepoRoot", () => {
  it("returns the top level for a nested directory or file, undefined outside a working tree", async () => {
    const repo = gitRepo();
    repo.write("a/b/c.txt", "c\n");
    expect(await findRepoRoot(join(repo.dir, "a", "b"))).toBe(repo.dir);
    expect(await findRepoRoot(join(repo.dir, "a", "b", "c.txt"))).toBe(repo.dir);
    expect(await findRepoRoot(makeTempDir("plain"))).toBeUndefined();
    expect(await findRepoRoot(join(repo.dir, ".git"))).toBeUndefined();
    expect(await findRepoRoot(join(repo.dir, "missing"))).toBeUndefined();
  });
});

describe("errors", () => {
  it("says when the path is not inside a git working tree", async () => {
    const dir = makeTempDir("plain");
    const error = await failure(materializeBaseline({ path: dir }));
    expect(error.code).toBe("ENOTGITREPO");
    expect(error.message).toContain(dir);
    expect(error.message).toContain("not inside a git working tree");
  });

  it("says when the path does not exist", async () => {
    const error = await failure(materializeBaseline({ path: join(makeTempDir("plain"), "nope") }));
    expect(error.code).toBe("ENOPATH");
    expect(error.message).toContain("does not exist");
  });

  it("says when the path is outside the working tree, before any expensive work", async () => {
    const { repo } = originAndClone();
    const error = await failure(materializeBaseline({ path: join(repo.dir, ".git", "refs") }));
    expect(error.code).toBe("EOUTSIDEREPO");
    expect(error.message).toContain(".git directory");
  });

  it("says when HEAD has no commits", async () => {
    const repo = gitRepo();
    const error = await failure(materializeBaseline({ path: repo.dir }));
    expect(error.code).toBe("ENOCOMMITS");
    expect(error.message).toContain("no commits");
  });

  it("names --base when nothing can be auto-detected", async () => {
    const repo = gitRepo();
    repo.write("a.txt", "a\n");
    repo.commit("only");
    const error = await failure(materializeBaseline({ path: repo.dir }));
    expect(error.code).toBe("ENOBASE");
    expect(error.message).toContain("origin/HEAD, origin/main, origin/master");
    expect(error.message).toContain("--base");
  });

  it("tells a shallow clone to fetch full history or pass --base", async () => {
    const { origin } = originAndClone();
    const shallow = join(makeTempDir("shallow"), "s");
    git(makeTempDir("cwd"), "clone", "--quiet", "--depth=1", `file://${origin}`, shallow);
    const error = await failure(materializeBaseline({ path: shallow }));
    expect(error.code).toBe("ESHALLOW");
    expect(error.message).toContain("fetch-depth: 0");
    expect(error.message).toContain("git fetch --unshallow");
    expect(error.message).toContain("--base");
  });

  it("names everything it tried for an unknown explicit base", async () => {
    const { repo } = originAndClone();
    const before = snapshotRepo(repo.dir);
    const error = await failure(materializeBaseline({ path: repo.dir, base: "no-such-branch" }));
    expect(error.code).toBe("EUNKNOWNBASE");
    expect(error.message).toContain("no-such-branch");
    expect(error.message).toContain("origin/no-such-branch");
    expect(error.message).toContain("fetching no-such-branch from origin");
    expect(snapshotRepo(repo.dir)).toEqual(before);
  });

  it("names what it tried when there is no origin to fetch an unknown base from", async () => {
    const repo = gitRepo();
    repo.write("a.txt", "a\n");
    repo.commit("only");
    writeFileSync(join(repo.dir, "b.txt"), "b\n");
    const error = await failure(materializeBaseline({ path: repo.dir, base: "nope" }));
    expect(error.code).toBe("EUNKNOWNBASE");
    expect(error.message).toContain("tried nope, origin/nope");
    expect(error.message).toContain("no origin remote");
  });
});
