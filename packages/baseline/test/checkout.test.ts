// checkoutFiles with real git processes: the index each process rewrites (`checkout-index --index`) is
// what proves that every file was written, and what gives the files' sizes without reading them again.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CheckoutError, checkoutFiles } from "../src/checkout.js";
import { privateGitEnvironment } from "../src/git-env.js";
import { entryPath, parseIndex } from "../src/index-file.js";
import { createPrivateRepo } from "../src/private-repo.js";
import { readTree } from "../src/read-tree.js";
import { gitRepo, makeTempDir, removeTempDirs, type TestRepo } from "./fixtures.js";

afterEach(removeTempDirs);

/** A commit with `count` files of assorted sizes (empty ones too), and a private repository to write it. */
async function privateCheckout(count: number) {
  const repo = gitRepo();
  for (let i = 0; i < count; i++) repo.write(`dir${i % 7}/file${i}.txt`, "x".repeat((i * 37) % 1000));
  return privateRepoFor(repo, repo.commit("files"));
}

/** A private repository, its working tree empty, and the index of `commit` (of `repo`) to write into it. */
async function privateRepoFor(repo: TestRepo, commit: string) {
  const target = makeTempDir("target");
  const gitDir = join(target, ".git");
  await createPrivateRepo(gitDir, { alternates: [join(repo.dir, ".git", "objects")], objectFormat: "sha1" });
  const env = { ...privateGitEnvironment(gitDir, target), GIT_INDEX_FILE: join(gitDir, "index") };
  const tree = await readTree(commit, env);
  const options = {
    target,
    gitDir,
    env,
    makeDirectory: (path: Buffer) =>
      mkdirSync(Buffer.concat([Buffer.from(`${target}/`), path]), { recursive: true }),
  };
  return { tree, env, target, options };
}

describe("checkoutFiles", () => {
  it("resolves to the bytes of the files written, as git recorded them, over several processes", async () => {
    // 600 files: two processes on a machine with two cores or more, one otherwise.
    const { tree, target, options } = await privateCheckout(600);
    const bytes = await checkoutFiles(tree.index, tree.files, options);
    let onDisk = 0;
    for (const i of tree.files) onDisk += statSync(join(target, entryPath(tree.index, i).toString())).size;
    expect(onDisk).toBeGreaterThan(0);
    expect(bytes).toBe(onDisk);
  });

  it("refuses a file git skipped without an error, naming it", async () => {
    const { tree, env, options } = await privateCheckout(3);
    // git's checkout-index passes over a skip-worktree entry silently: a file it did not write must not
    // count as written.
    execFileSync("git", ["update-index", "--skip-worktree", "dir1/file1.txt"], { env });
    const index = parseIndex(readFileSync(env.GIT_INDEX_FILE), tree.index.oidBytes);
    const error = await checkoutFiles(index, tree.files, options).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ name: "BaselineError", code: "EGIT" });
    expect((error as Error).message).toContain("did not write dir1/file1.txt");
  });

  it("rejects with EGIT, saying git cannot be found, when git cannot start", async () => {
    const { tree, target, options } = await privateCheckout(3);
    const env = { ...options.env, PATH: makeTempDir("no-git") };
    const error = await checkoutFiles(tree.index, tree.files, { ...options, env }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toMatchObject({ name: "BaselineError", code: "EGIT" });
    expect((error as Error).message).toContain("git is not installed or not on PATH");
    expect(readdirSync(target)).toEqual([".git"]);
  });

  it("rejects with the abort reason, once its git processes are stopped", async () => {
    const { tree, options } = await privateCheckout(600);
    const controller = new AbortController();
    const reason = new Error("stop");
    const error = await checkoutFiles(tree.index, tree.files, {
      ...options,
      signal: controller.signal,
      onStarted: () => controller.abort(reason),
    }).catch((caught: unknown) => caught);
    expect(error).toBe(reason);
    // Already aborted: nothing is started.
    const again = await checkoutFiles(tree.index, tree.files, {
      ...options,
      signal: controller.signal,
    }).catch((caught: unknown) => caught);
    expect(again).toBe(reason);
  });

  describe("reports git's first complaint, with the path it named as raw bytes", () => {
    /** Checks out a commit of `files` into a target prepared by `prepare`, and returns the failure. */
    async function failure(files: string[], prepare: (target: string) => void) {
      const repo = gitRepo();
      // Names as raw bytes (one per character), which need not be UTF-8.
      for (const file of files) {
        const path = Buffer.concat([Buffer.from(`${repo.dir}/`), Buffer.from(file, "latin1")]);
        mkdirSync(path.subarray(0, path.lastIndexOf(0x2f)), { recursive: true });
        writeFileSync(path, "x\n");
      }
      const { tree, target, options } = await privateRepoFor(repo, repo.commit("files"));
      prepare(target);
      try {
        const error = await checkoutFiles(tree.index, tree.files, options).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(CheckoutError);
        const { action, path, stderr } = (error as CheckoutError).failure;
        return { action, path: path?.toString("latin1"), stderr };
      } finally {
        execFileSync("chattr", ["-R", "-i", target]);
      }
    }
    const immutable = (dir: string) => execFileSync("chattr", ["+i", dir]);

    it("a file git cannot create, even when its path holds ': '", async () => {
      const result = await failure(["ok.txt", "a: b/c: d.txt"], (target) => {
        mkdirSync(join(target, "a: b"));
        immutable(join(target, "a: b"));
      });
      expect(result).toMatchObject({ action: "create", path: "a: b/c: d.txt" });
      expect(result.stderr).toBe("error: unable to create file a: b/c: d.txt: Operation not permitted");
    });

    it("a file that is already there, named before a later file git cannot create", async () => {
      const result = await failure(["a.txt", "d/f.txt"], (target) => {
        writeFileSync(join(target, "a.txt"), "mine");
        mkdirSync(join(target, "d"));
        immutable(join(target, "d"));
      });
      expect(result).toEqual({
        action: "exists",
        path: "a.txt",
        stderr:
          "a.txt already exists, no checkout\nerror: unable to create file d/f.txt: Operation not permitted",
      });
    });

    it("a file git cannot create, named before a later file that is already there", async () => {
      const result = await failure(["a/f.txt", "z.txt"], (target) => {
        mkdirSync(join(target, "a"));
        immutable(join(target, "a"));
        writeFileSync(join(target, "z.txt"), "mine");
      });
      expect(result).toMatchObject({ action: "create", path: "a/f.txt" });
    });

    it("no path for a complaint that names none: a corrupt object", async () => {
      const repo = gitRepo();
      repo.write("a.txt", "a\n");
      const commit = repo.commit("one file");
      const oid = repo.git("rev-parse", `${commit}:a.txt`);
      const object = join(repo.dir, ".git", "objects", oid.slice(0, 2), oid.slice(2));
      chmodSync(object, 0o644);
      writeFileSync(object, "garbage");
      const { tree, options } = await privateRepoFor(repo, commit);
      const error = await checkoutFiles(tree.index, tree.files, options).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(CheckoutError);
      expect((error as CheckoutError).failure).toMatchObject({ action: "other", path: undefined });
      expect((error as CheckoutError).failure.stderr).toContain(`loose object ${oid}`);
    });

    it("a directory git cannot create, its name not UTF-8", async () => {
      const name = "d\xff\xfe";
      const result = await failure([`${name}/f.txt`], (target) =>
        writeFileSync(Buffer.concat([Buffer.from(`${target}/`), Buffer.from(name, "latin1")]), "in the way"),
      );
      expect(result.action).toBe("mkdir");
      expect(result.path).toBe(name);
      // The message keeps the name's bytes, shown as UTF-8 (its invalid bytes replaced).
      expect(result.stderr).toBe("fatal: cannot create directory at 'd\ufffd\ufffd': File exists");
    });

    it("the first of several files git cannot create, and five lines of its complaints", async () => {
      const names = Array.from({ length: 8 }, (_, i) => `d${i}/f.txt`);
      const result = await failure(names, (target) => {
        for (let i = 0; i < 8; i++) {
          mkdirSync(join(target, `d${i}`));
          immutable(join(target, `d${i}`));
        }
      });
      expect(result.action).toBe("create");
      expect(result.path).toBe("d0/f.txt");
      expect(result.stderr.split("\n")).toEqual(
        names.slice(0, 5).map((name) => `error: unable to create file ${name}: Operation not permitted`),
      );
    });
  });
});
