// checkoutFiles with real git processes: the index each process rewrites (`checkout-index --index`) is
// what proves that every file was written, and what gives the files' sizes without reading them again.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { checkoutFiles } from "../src/checkout.js";
import { privateGitEnvironment } from "../src/git-env.js";
import { entryPath, parseIndex } from "../src/index-file.js";
import { createPrivateRepo } from "../src/private-repo.js";
import { readTree } from "../src/read-tree.js";
import { gitRepo, makeTempDir, removeTempDirs } from "./fixtures.js";

afterEach(removeTempDirs);

/** A commit with `count` files of assorted sizes (empty ones too), and a private repository to write it. */
async function privateCheckout(count: number) {
  const repo = gitRepo();
  for (let i = 0; i < count; i++) repo.write(`dir${i % 7}/file${i}.txt`, "x".repeat((i * 37) % 1000));
  const commit = repo.commit("files");
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
});
