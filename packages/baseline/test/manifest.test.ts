// The slot manifest: a header line and the index `git read-tree` wrote, read back as the entries git
// lists for the commit. A manifest this version did not write (another header, another commit id, an
// index cut short) decodes to nothing, so that verify reports it instead of trusting it.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { decodeManifest, readTreeEntries, writeManifest } from "../src/manifest.js";
import { gitRepo, hashBlob, makeTempDir, removeTempDirs, type TestRepo } from "./fixtures.js";

afterEach(removeTempDirs);

function readTreeIndex(repo: TestRepo, commit: string): Buffer {
  const file = join(makeTempDir("index"), "index");
  execFileSync("git", ["read-tree", commit], {
    cwd: repo.dir,
    env: { ...process.env, GIT_INDEX_FILE: file },
  });
  return readFileSync(file);
}

/** A commit with a plain file, an executable, a symlink, a submodule and a file in a directory. */
function richCommit(repo = gitRepo()): string {
  repo.write("a.txt", "a\n");
  repo.write("bin/run", "#!/bin/sh\n", 0o755);
  repo.write("d/e.txt", "e\n");
  repo.git("add", "--all");
  const blob = hashBlob(repo.dir, "a.txt");
  repo.git("update-index", "--add", "--cacheinfo", `120000,${blob},link`);
  repo.git("update-index", "--add", "--cacheinfo", `160000,${"b".repeat(blob.length)},sub`);
  repo.git("commit", "--quiet", "-m", "rich");
  return repo.git("rev-parse", "HEAD");
}

const rows = (entries: { mode: string; oid: string; path: Buffer }[]) =>
  entries.map((e) => [e.mode, e.oid, e.path.toString("latin1")]);

describe("writeManifest and decodeManifest", () => {
  for (const format of ["sha1", "sha256"] as const) {
    it(`give back what git ls-tree lists, submodules left out (${format})`, async () => {
      const dir = makeTempDir("repo");
      execFileSync("git", ["init", "--quiet", `--object-format=${format}`, dir]);
      const repo = gitRepo(dir);
      const commit = richCommit(repo);
      const path = join(makeTempDir("slot"), "manifest");
      await writeManifest(path, commit, readTreeIndex(repo, commit));
      const bytes = readFileSync(path);
      expect(bytes.toString("latin1", 0, bytes.indexOf(0x0a) + 1)).toBe(
        `cas-baseline-manifest 2 ${commit}\n`,
      );
      const decoded = decodeManifest(bytes);
      expect(decoded?.commit).toBe(commit);
      const listed = rows(await readTreeEntries(repo.dir, commit));
      expect(rows(decoded?.entries ?? [])).toEqual(listed);
      expect(listed.map(([mode, , p]) => `${mode} ${p}`)).toEqual([
        "100644 a.txt",
        "100755 bin/run",
        "100644 d/e.txt",
        "120000 link",
      ]);
    });
  }

  it("closes the file it wrote", async () => {
    const repo = gitRepo();
    const commit = richCommit(repo);
    const index = readTreeIndex(repo, commit);
    const open = () => readdirSync("/proc/self/fd").length;
    const before = open();
    await writeManifest(join(makeTempDir("slot"), "manifest"), commit, index);
    expect(open()).toBe(before);
  });

  it("never writes over an existing file", async () => {
    const repo = gitRepo();
    const commit = richCommit(repo);
    const path = join(makeTempDir("slot"), "manifest");
    writeFileSync(path, "mine");
    await expect(writeManifest(path, commit, readTreeIndex(repo, commit))).rejects.toMatchObject({
      code: "EEXIST",
    });
    expect(readFileSync(path, "utf8")).toBe("mine");
  });

  it("decodes nothing from bytes this version did not write", async () => {
    const repo = gitRepo();
    const commit = richCommit(repo);
    const index = readTreeIndex(repo, commit);
    const manifest = (header: string, body = index) => Buffer.concat([Buffer.from(header), body]);
    expect(decodeManifest(manifest(`cas-baseline-manifest 2 ${commit}\n`))).toBeDefined();
    for (const bytes of [
      Buffer.alloc(0),
      Buffer.from(`cas-baseline-manifest 2 ${commit}`),
      manifest(`cas-baseline-manifest 1 ${commit}\n`),
      manifest(`cas-baseline-manifest 2 ${commit}`),
      manifest(`cas-baseline-manifest 2 \n`),
      manifest(`xcas-baseline-manifest 2 ${commit}\n`),
      manifest(`cas-baseline-manifest 2  ${commit}\n`),
      manifest(`cas-baseline-manifest 2 ${commit.toUpperCase()}\n`),
      manifest(`cas-baseline-manifest 2 ${commit.slice(1)}\n`),
      manifest(`cas-baseline-manifest 2 ${commit}0\n`),
      manifest(`cas-baseline-manifest 2 x${commit}\n`),
      manifest(`cas-baseline-manifest 2 ${commit}\n`, index.subarray(0, index.length - 200)),
      manifest(`cas-baseline-manifest 2 ${commit}\n`, Buffer.from("not an index")),
    ]) {
      expect(decodeManifest(bytes), bytes.toString("latin1", 0, 80)).toBeUndefined();
    }
  });
});

describe("readTreeEntries", () => {
  it("fails with git's message for a commit the repository does not hold", async () => {
    const repo = gitRepo();
    richCommit(repo);
    const missing = "c".repeat(40);
    await expect(readTreeEntries(repo.dir, missing)).rejects.toMatchObject({
      code: "EGIT",
      message: expect.stringMatching(
        new RegExp(`^git ls-tree -r -z --full-tree ${missing} failed in ${repo.dir}: \\S`),
      ),
    });
  });
});
