import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BaselineError, materializeBaseline } from "../src/index.js";
import { stagingDir } from "../src/layout.js";
import {
  commitTree,
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

  it("rejects an entry with an unknown mode", async () => {
    const { repo } = originAndClone();
    const root = rawTree(repo.dir, [{ mode: "100600", name: "odd", oid: hashBlob(repo.dir, "x\n") }]);
    const { error } = await rejectCrafted(repo.dir, commitTree(repo.dir, root));
    expect(error.code).toBe("EBADTREE");
    expect(error.message).toContain('unsupported mode "100600"');
  });
});
