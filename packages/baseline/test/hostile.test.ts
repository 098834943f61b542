import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BaselineError, materializeBaseline } from "../src/index.js";
import { stagingDir } from "../src/layout.js";
import {
  commitTree,
  gitBytes,
  hashBlob,
  listTree,
  makeTempDir,
  originAndClone,
  rawTree,
  removeTempDirs,
} from "./fixtures.js";

afterEach(removeTempDirs);

/** Materializes a crafted commit into a fresh cache and returns the error it must fail with. */
async function rejectCrafted(
  repoDir: string,
  commit: string,
): Promise<{ error: BaselineError; cacheRoot: string }> {
  const cacheRoot = makeTempDir("cache");
  const error = await materializeBaseline({ path: repoDir, base: commit, cacheRoot }).then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(BaselineError);
  // Nothing escaped the staging dir, and the staging dir itself is gone.
  expect(listTree(cacheRoot)).toEqual(["baselines/", "baselines/.staging/", "baselines/.trash/"]);
  return { error: error as BaselineError, cacheRoot };
}

describe("hostile trees", () => {
  const badNames: [string, string | Buffer][] = [
    ["a '.' entry", "."],
    ["a '..' entry", ".."],
    ["a '.git' entry", ".git"],
    ["a '.GiT' entry (any case)", ".GiT"],
    ["a name holding '/'", "a/b"],
    ["a name holding '\\'", "a\\b"],
    ["an empty name", ""],
  ];

  for (const [label, name] of badNames) {
    for (const kind of ["blob", "tree"] as const) {
      it(`rejects ${label} as a ${kind}`, async () => {
        const { repo } = originAndClone();
        const escapeBlob = hashBlob(repo.dir, "escaped\n");
        const inner = rawTree(repo.dir, [{ mode: "100644", name: "escape", oid: escapeBlob }]);
        const root = rawTree(repo.dir, [
          { mode: "100644", name: "fine.txt", oid: hashBlob(repo.dir, "fine\n") },
          kind === "blob" ? { mode: "100644", name, oid: escapeBlob } : { mode: "40000", name, oid: inner },
        ]);
        const { error, cacheRoot } = await rejectCrafted(repo.dir, commitTree(repo.dir, root));
        expect(error.code).toBe("EBADTREE");
        expect(error.message).toContain("refusing to write it");
        // A ".." tree would land beside the build's temp dir, in the staging dir.
        expect(existsSync(join(stagingDir(cacheRoot), "escape"))).toBe(false);
      });
    }
  }

  it("rejects a name holding NUL", async () => {
    const { repo } = originAndClone();
    const root = rawTree(repo.dir, [
      { mode: "100644", name: Buffer.from("a\0b"), oid: hashBlob(repo.dir, "x\n") },
    ]);
    const { error } = await rejectCrafted(repo.dir, commitTree(repo.dir, root));
    expect(error.code).toBe("EBADTREE");
  });

  it("rejects a symlink followed by a path through it, writing nothing where it points", async () => {
    const { repo } = originAndClone();
    const outside = makeTempDir("outside");
    const through = rawTree(repo.dir, [
      { mode: "100644", name: "pwned", oid: hashBlob(repo.dir, "pwned\n") },
    ]);
    const root = rawTree(repo.dir, [
      { mode: "120000", name: "link", oid: hashBlob(repo.dir, outside) },
      { mode: "40000", name: "link", oid: through },
    ]);
    const { error } = await rejectCrafted(repo.dir, commitTree(repo.dir, root));
    expect(error.code).toBe("EBADTREE");
    expect(error.message).toContain("path through a symlink");
    expect(readdirSync(outside)).toEqual([]);
  });

  it("rejects a name holding '/' that leads into a real directory of the same name", async () => {
    const { repo } = originAndClone();
    const inner = rawTree(repo.dir, [
      { mode: "100644", name: "real.txt", oid: hashBlob(repo.dir, "real\n") },
    ]);
    const root = rawTree(repo.dir, [
      { mode: "100644", name: "a/smuggled.txt", oid: hashBlob(repo.dir, "smuggled\n") },
      { mode: "40000", name: "a", oid: inner },
    ]);
    const { error } = await rejectCrafted(repo.dir, commitTree(repo.dir, root));
    expect(error.code).toBe("EBADTREE");
    expect(error.message).toContain("path separator");
  });

  it("rejects an empty directory with a bad name, though nothing would be written for it", async () => {
    const { repo } = originAndClone();
    const emptyTree = gitBytes(repo.dir, ["hash-object", "-w", "-t", "tree", "--stdin"], "")
      .toString()
      .trim();
    const root = rawTree(repo.dir, [
      { mode: "40000", name: "..", oid: emptyTree },
      { mode: "100644", name: "fine.txt", oid: hashBlob(repo.dir, "fine\n") },
    ]);
    const { error } = await rejectCrafted(repo.dir, commitTree(repo.dir, root));
    expect(error.code).toBe("EBADTREE");
    expect(error.message).toContain('the name ".."');
  });

  it("rejects an entry whose mode git cannot read either", async () => {
    const { repo } = originAndClone();
    const root = rawTree(repo.dir, [{ mode: "10a644", name: "odd", oid: hashBlob(repo.dir, "x\n") }]);
    const { error } = await rejectCrafted(repo.dir, commitTree(repo.dir, root));
    expect(error.code).toBe("EBADTREE");
    expect(error.message).toContain('malformed mode "10a644"');
  });
});

describe("modes as git reads them", () => {
  it("writes what git archive writes for 100600, 100664, 100775 and a zero-padded 040000", async () => {
    const { repo } = originAndClone();
    const inner = rawTree(repo.dir, [
      { mode: "100644", name: "deep.txt", oid: hashBlob(repo.dir, "deep\n") },
    ]);
    const root = rawTree(repo.dir, [
      { mode: "100600", name: "private.txt", oid: hashBlob(repo.dir, "private\n") },
      { mode: "100664", name: "group.txt", oid: hashBlob(repo.dir, "group\n") },
      { mode: "100775", name: "run.sh", oid: hashBlob(repo.dir, "#!/bin/sh\n") },
      { mode: "040000", name: "sub", oid: inner },
    ]);
    const commit = commitTree(repo.dir, root);
    const result = await materializeBaseline({ path: repo.dir, base: commit });
    const archived = makeTempDir("archive");
    execFileSync("sh", ["-c", 'git -C "$1" archive "$2" | tar -x -C "$3"', "sh", repo.dir, commit, archived]);

    expect(listTree(result.dir)).toEqual([".git/", ...listTree(archived)]);
    for (const path of ["private.txt", "group.txt", "run.sh", "sub/deep.txt"]) {
      expect(readFileSync(join(result.dir, path)), path).toEqual(readFileSync(join(archived, path)));
      const executable = (file: string) => (statSync(file).mode & 0o100) !== 0;
      expect(executable(join(result.dir, path)), path).toBe(executable(join(archived, path)));
    }
    expect(statSync(join(result.dir, "private.txt")).mode & 0o777).toBe(0o644 & ~process.umask());
    expect(statSync(join(result.dir, "run.sh")).mode & 0o111).not.toBe(0);
  });
});
