import { type BatchObject, CatFileBatch, readObjects } from "./cat-file.js";
import { BaselineError } from "./errors.js";
import { checkTree } from "./tree.js";

/** A tree or symlink to read, with its path for messages (made only when needed). */
export interface ObjectToCheck {
  oid: string;
  path: () => string;
}

/** What reading every tree object of a commit byte for byte found. */
export interface CheckedTree {
  /** The target of every symlink asked about, by blob id: non-empty, without NUL. */
  symlinkTargets: Map<string, Buffer>;
}

/** The longest symlink target accepted; longer ones cannot be created on any common system anyway. */
const MAX_SYMLINK_TARGET = 4096;

/** The trees and symlinks of a commit to check, once known. */
export interface ObjectsToCheck {
  /** Every tree of the commit (the index's cache-tree extension), or undefined when not known. */
  trees: readonly ObjectToCheck[] | undefined;
  symlinks: readonly ObjectToCheck[];
}

/**
 * Reads the raw bytes of every tree object of `commit` and checks each with {@link checkTree} (names,
 * modes, no duplicate names), then reads the targets of `symlinks` and checks that each is a non-empty
 * blob without NUL. This is the check that nothing else can replace: git's own listings print a name
 * that holds `/` as if it were two names.
 *
 * `objects` may still be coming (git starts at once): when its `trees` are known, they are asked for in
 * one buffered batch; otherwise the trees are walked level by level from the root.
 *
 * Throws {@link BaselineError} `EBADTREE` for a hostile or corrupt tree or symlink, `EGIT` when git lacks
 * an object or fails; what `objects` rejects with; `signal.reason` when aborted. `env` is the private
 * repository's environment.
 */
export async function checkTrees(
  commit: string,
  env: NodeJS.ProcessEnv,
  objects: ObjectsToCheck | Promise<ObjectsToCheck>,
  signal?: AbortSignal,
): Promise<CheckedTree> {
  const oidBytes = commit.length === 64 ? 32 : 20;
  const root = { oid: `${commit}^{tree}`, path: () => "" };
  // Every tree known: one buffered batch, checked synchronously as it streams in.
  let unique: ObjectToCheck[] = [];
  let links: ObjectToCheck[] = [];
  const known = Promise.resolve(objects);
  const symlinkTargets = new Map<string, Buffer>();
  let index = 0;
  await readObjects(
    known.then(({ trees, symlinks }) => {
      if (trees === undefined) return [];
      unique = dedupe(trees.length > 0 ? trees : [root]);
      links = dedupe(symlinks);
      return [...unique, ...links].map((object) => object.oid);
    }),
    { env, signal },
    (object) => {
      const request =
        index < unique.length
          ? (unique[index] as ObjectToCheck)
          : (links[index - unique.length] as ObjectToCheck);
      if (index++ < unique.length) checkTreeObject(object, request, oidBytes);
      else symlinkTargets.set(object.oid, checkTarget(object, request));
    },
  );
  const { trees, symlinks } = await known;
  if (trees !== undefined) return { symlinkTargets };
  // Level by level from the root: each level is one round trip to git.
  const batch = new CatFileBatch({ env, signal });
  try {
    const seen = new Set<string>();
    for (let level = [root]; level.length > 0; ) {
      batch.request(level.map((tree) => tree.oid));
      const next: ObjectToCheck[] = [];
      for (const tree of level) {
        const header = await batch.readHeader();
        const body = header.type === "missing" ? Buffer.alloc(0) : await batch.readBody(header.size);
        checkTreeObject({ ...header, body }, tree, oidBytes, (name, oid) => {
          if (seen.has(oid)) return;
          seen.add(oid);
          const parent = tree.path;
          next.push({ oid, path: () => [parent(), name.toString("utf8")].filter(Boolean).join("/") });
        });
      }
      level = next;
    }
  } finally {
    batch.close();
  }
  return { symlinkTargets: await readSymlinkTargets(env, symlinks, signal) };
}

function checkTreeObject(
  object: BatchObject,
  tree: ObjectToCheck,
  oidBytes: number,
  onSubtree?: (name: Buffer, oid: string) => void,
): void {
  if (object.type === "missing") {
    throw new BaselineError(
      "EGIT",
      `git cannot read tree ${tree.path() || "/"} (${object.oid}); is the repository complete?`,
    );
  }
  if (object.type !== "tree") {
    throw new BaselineError("EBADTREE", `tree entry ${tree.path() || "/"} is a ${object.type}, not a tree`);
  }
  checkTree(object.body, oidBytes, tree.path, onSubtree);
}

/** A symlink's target, checked: a non-empty blob without NUL, short enough for any system. */
function checkTarget(object: BatchObject, link: ObjectToCheck): Buffer {
  if (object.type === "missing") {
    throw new BaselineError(
      "EGIT",
      `git cannot read symlink ${link.path()} (${object.oid}); is the repository complete?`,
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

/**
 * Reads and checks the targets of `symlinks` with a cat-file of its own, for when they could not be read
 * with the trees (a partial clone fetches them in between). Throws like {@link checkTrees}.
 */
export async function readSymlinkTargets(
  env: NodeJS.ProcessEnv,
  symlinks: readonly ObjectToCheck[],
  signal?: AbortSignal,
): Promise<Map<string, Buffer>> {
  if (symlinks.length === 0) return new Map();
  const links = dedupe(symlinks);
  const targets = new Map<string, Buffer>();
  let index = 0;
  await readObjects(
    links.map((link) => link.oid),
    { env, signal },
    (object) => {
      targets.set(object.oid, checkTarget(object, links[index++] as ObjectToCheck));
    },
  );
  return targets;
}

function dedupe(objects: readonly ObjectToCheck[]): ObjectToCheck[] {
  const seen = new Set<string>();
  return objects.filter((object) => !seen.has(object.oid) && seen.add(object.oid) !== undefined);
}
