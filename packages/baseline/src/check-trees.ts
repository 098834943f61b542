import { type BatchObject, CatFileBatch, readObjects } from "./cat-file.js";
import { BaselineError } from "./errors.js";
import type { IndexTree, ParsedIndex } from "./index-file.js";
import { checkEntryName, checkTree } from "./tree.js";

/**
 * Is the tree sound? A hostile tree can hold what git's own reading hides: a name with `/` (read as two
 * components), a name with `\`, or a name twice (git keeps one, so a symlink beside a directory of the
 * same name silently disappears). Two ways to answer:
 *
 * - {@link indexMatchesTrees}, fast, from what `git read-tree` already produced: the index (what git
 *   made of the tree) against its cache-tree extension (counted by git from the tree objects themselves).
 * - {@link checkTrees}, slow, reading every tree object byte for byte; it names the bad entry, and runs
 *   whenever the fast answer is not a plain yes.
 */

/** A symlink to read, with its path for messages (made only when needed). */
export interface LinkToRead {
  oid: string;
  path: () => string;
}

/** The longest symlink target accepted; longer ones cannot be created on any common system anyway. */
const MAX_SYMLINK_TARGET = 4096;

const SLASH = 0x2f;
const BACKSLASH = 0x5c;

/**
 * True when the index is exactly the flattening of the tree objects it was read from, which holds only
 * for a sound tree; false otherwise, or when the cache-tree extension cannot tell (then ask
 * {@link checkTrees}).
 *
 * Why it is enough: `read-tree` refuses `.`, `..`, `.git` and empty components, so what it can hide is a
 * name holding `/` or `\` and a repeated name. No path holds a backslash (checked here). The cache-tree
 * records, for every tree object, how many entries it holds at any depth and its subtrees by name, counted
 * from the objects; the index lists the paths git wrote. A repeated name makes the index hold fewer
 * entries than the objects counted; a name with `/` files an entry under a directory whose tree object
 * does not hold it (or that no tree object is). So: the root's count must equal the index's size, and
 * for every tree, its entries must be a contiguous run of the index whose paths all start with the
 * tree's path, whose deeper paths lead only into its recorded subtrees, each such run exactly as long as
 * the subtree's count, and every non-empty subtree visited once. An empty subtree holds nothing to write;
 * only its name is checked.
 */
export function indexMatchesTrees(index: ParsedIndex): boolean {
  const root = index.trees;
  if (root === undefined) return false;
  if (pathsHoldBackslash(index)) return false;
  const { bytes, pathStarts, pathEnds } = index;
  const visited = new Set<IndexTree>();

  /**
   * Walks `tree`'s run of entries from `start`; every path in it starts with the first `prefix` bytes of
   * entry `start`'s path (the tree's path and a slash). Returns the run's end, or -1.
   */
  const walk = (tree: IndexTree, start: number, prefix: number): number => {
    const end = start + tree.entryCount;
    if (end > index.count) return -1;
    // In bytewise order the paths that share a prefix are contiguous: when the run's first and last
    // paths hold the tree's prefix, every path between them does.
    if (prefix > 0) {
      const first = pathStarts[start] as number;
      const last = pathStarts[end - 1] as number;
      if ((pathEnds[end - 1] as number) - last <= prefix) return -1;
      for (let k = 0; k < prefix; k++) if (bytes[first + k] !== bytes[last + k]) return -1;
    }
    let byName: Map<string, IndexTree> | undefined;
    for (let i = start; i < end; ) {
      const nameStart = (pathStarts[i] as number) + prefix;
      const pathEnd = pathEnds[i] as number;
      let slash = nameStart;
      while (slash < pathEnd && bytes[slash] !== SLASH) slash++;
      if (slash === pathEnd) {
        i++;
        continue;
      }
      const child = subtreeNamed(tree, nameStart, slash);
      if (child === undefined || visited.has(child)) return -1;
      visited.add(child);
      i = walk(child, i, slash + 1 - (pathStarts[i] as number));
      if (i < 0) return -1;
    }
    for (const sub of tree.subtrees) {
      if (visited.has(sub)) continue;
      if (sub.entryCount > 0) return -1;
      try {
        checkEntryName(sub.name, "");
      } catch {
        return -1;
      }
    }
    return end;

    /** The subtree of `tree` named by `bytes[from, to)`. */
    function subtreeNamed(tree: IndexTree, from: number, to: number): IndexTree | undefined {
      const { subtrees } = tree;
      if (subtrees.length > 8) {
        byName ??= new Map(subtrees.map((sub) => [sub.name.toString("latin1"), sub]));
        return byName.get(bytes.toString("latin1", from, to));
      }
      for (const sub of subtrees) {
        const { name } = sub;
        if (name.length !== to - from) continue;
        let k = 0;
        while (k < name.length && name[k] === bytes[from + k]) k++;
        if (k === name.length) return sub;
      }
      return undefined;
    }
  };
  return walk(root, 0, 0) === index.count;
}

/** Whether any path of the index holds a backslash (found with one pass over the whole index). */
function pathsHoldBackslash(index: ParsedIndex): boolean {
  const { bytes, count, pathStarts, pathEnds } = index;
  let entry = 0;
  for (let at = bytes.indexOf(BACKSLASH); at >= 0 && entry < count; at = bytes.indexOf(BACKSLASH, at + 1)) {
    while (entry < count && (pathEnds[entry] as number) <= at) entry++;
    if (entry < count && at >= (pathStarts[entry] as number)) return true;
  }
  return false;
}

/**
 * Reads every tree object of `commit`, level by level from the root, and checks each byte for byte with
 * {@link checkTree} (modes, names, no name twice). Resolves when the tree is sound.
 *
 * Throws {@link BaselineError} `EBADTREE` naming the bad entry, `EGIT` when git lacks an object or fails;
 * `signal.reason` when aborted. `env` is the private repository's environment.
 */
export async function checkTrees(
  commit: string,
  env: NodeJS.ProcessEnv,
  signal?: AbortSignal,
): Promise<void> {
  const oidBytes = commit.length === 64 ? 32 : 20;
  const batch = new CatFileBatch({ env, signal });
  try {
    const seen = new Set<string>();
    for (let level = [{ oid: `${commit}^{tree}`, path: "" }]; level.length > 0; ) {
      batch.request(level.map((tree) => tree.oid));
      const next: typeof level = [];
      for (const tree of level) {
        const header = await batch.readHeader();
        if (header.type === "missing") {
          throw new BaselineError(
            "EGIT",
            `git cannot read tree ${tree.path || "/"} (${header.oid}); is the repository complete?`,
          );
        }
        if (header.type !== "tree") {
          await batch.skipBody(header.size);
          throw new BaselineError(
            "EBADTREE",
            `tree entry ${tree.path || "/"} is a ${header.type}, not a tree`,
          );
        }
        checkTree(await batch.readBody(header.size), oidBytes, tree.path, (name, oid) => {
          if (seen.has(oid)) return;
          seen.add(oid);
          const text = name.toString("utf8");
          next.push({ oid, path: tree.path ? `${tree.path}/${text}` : text });
        });
      }
      level = next;
    }
  } finally {
    batch.close();
  }
}

/**
 * Reads the targets of `symlinks` with one `git cat-file --batch` and checks each: a blob, not empty, no
 * NUL, at most 4,096 bytes. Returns them by blob id. Throws {@link BaselineError} `EBADTREE` naming the
 * symlink, `EGIT` when git lacks the blob; `signal.reason` when aborted.
 */
export async function readSymlinkTargets(
  env: NodeJS.ProcessEnv,
  symlinks: readonly LinkToRead[],
  signal?: AbortSignal,
): Promise<Map<string, Buffer>> {
  const seen = new Set<string>();
  const links = symlinks.filter((link) => !seen.has(link.oid) && seen.add(link.oid) !== undefined);
  const targets = new Map<string, Buffer>();
  let index = 0;
  await readObjects(
    links.map((link) => link.oid),
    { env, signal },
    (object) => {
      const link = links[index++] as LinkToRead;
      targets.set(link.oid, checkTarget(object, link));
    },
  );
  return targets;
}

function checkTarget(object: BatchObject, link: LinkToRead): Buffer {
  if (object.type === "missing") {
    throw new BaselineError(
      "EGIT",
      `git cannot read symlink ${link.path()} (${link.oid}); is the repository complete?`,
    );
  }
  const reason =
    object.type !== "blob"
      ? `is a ${object.type}, not a blob`
      : object.body.length === 0
        ? "has an empty target"
        : object.body.length > MAX_SYMLINK_TARGET
          ? `has a target of ${object.body.length} bytes`
          : object.body.includes(0)
            ? "has a target holding NUL"
            : undefined;
  if (reason !== undefined)
    throw new BaselineError("EBADTREE", `symlink ${link.path()} ${reason}: refusing to write it`);
  return Buffer.from(object.body);
}
