// indexMatchesTrees decides, without reading the tree objects again, that a tree is sound. Real hostile
// trees (hostile.test.ts) reach each of its checks that git can be made to need; these pairs of an index
// and a cache-tree, which git never writes for any tree, reach the others, so that none can go unnoticed.
import { describe, expect, it } from "vitest";
import { indexMatchesTrees } from "../src/check-trees.js";
import type { IndexTree, ParsedIndex } from "../src/index-file.js";

interface TreeSpec {
  count: number;
  subtrees?: Record<string, TreeSpec>;
}

function tree(spec: TreeSpec, name = "", parent?: IndexTree): IndexTree {
  const node: IndexTree = { name: Buffer.from(name), entryCount: spec.count, subtrees: [], parent };
  for (const [subName, sub] of Object.entries(spec.subtrees ?? {}))
    node.subtrees.push(tree(sub, subName, node));
  return node;
}

/** An index holding `paths` (in order) whose cache-tree is `root`. Only what the check reads is real. */
function index(paths: string[], root: TreeSpec): ParsedIndex {
  const bytes = Buffer.from(paths.join(""));
  const pathStarts = new Int32Array(paths.length);
  const pathEnds = new Int32Array(paths.length);
  let at = 0;
  paths.forEach((path, i) => {
    pathStarts[i] = at;
    at += Buffer.byteLength(path);
    pathEnds[i] = at;
  });
  return {
    bytes,
    version: 2,
    oidBytes: 20,
    count: paths.length,
    starts: pathStarts,
    ends: pathEnds,
    modes: new Int32Array(paths.length),
    pathStarts,
    pathEnds,
    trees: tree(root),
  };
}

describe("indexMatchesTrees", () => {
  it("says yes for an index that is the flattening of its trees", () => {
    const sound = index(["a.txt", "a/b/c", "a/d", "z"], {
      count: 4,
      subtrees: { a: { count: 2, subtrees: { b: { count: 1 } } } },
    });
    expect(indexMatchesTrees(sound)).toBe(true);
  });

  it("says no when the index holds more entries than the trees", () => {
    expect(indexMatchesTrees(index(["x", "y"], { count: 1 }))).toBe(false);
  });

  it("says no when a directory's run of entries reaches past its own paths", () => {
    expect(indexMatchesTrees(index(["a/x", "ab"], { count: 2, subtrees: { a: { count: 2 } } }))).toBe(false);
  });

  it("says no when a directory that holds entries is never reached", () => {
    expect(indexMatchesTrees(index(["x", "y"], { count: 2, subtrees: { a: { count: 1 } } }))).toBe(false);
  });

  it("says no when there is no cache-tree to compare with", () => {
    const missing = { ...index(["x"], { count: 1 }), trees: undefined };
    expect(indexMatchesTrees(missing)).toBe(false);
  });
});
