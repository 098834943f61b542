import { closeSync, mkdirSync, openSync, symlinkSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { CatFileBatch } from "./cat-file.js";
import { checkTrees, indexMatchesTrees, readSymlinkTargets } from "./check-trees.js";
import { CheckoutError, checkoutFiles } from "./checkout.js";
import { BaselineError, writeError } from "./errors.js";
import { privateGitEnvironment } from "./git-env.js";
import { entryOid, entryPath } from "./index-file.js";
import { createPrivateRepo, emptyDirectory, objectFormatOf } from "./private-repo.js";
import { readTree, type TreeListing } from "./read-tree.js";

/** Where the objects of the commit to write are. */
export interface TreeSource {
  commit: string;
  /** Object directories that hold the commit's objects (the user's, a fetched base's), read-only. */
  objectDirs: readonly string[];
  /** When the repository is a partial clone: what fetches the objects it lacks (`partial-clone.ts`). */
  partial?: PartialCloneFetcher | undefined;
}

/**
 * Fetches the objects a partial clone lacks into the private repository (git directory `gitDir`,
 * environment `env`), so that nothing ever fetches them one by one.
 */
export interface PartialCloneFetcher {
  /** Fetches the commit's trees when its root tree is missing (a treeless clone). */
  fetchTrees(gitDir: string, env: NodeJS.ProcessEnv, commit: string): Promise<void>;
  /** Fetches whichever of `blobs` are missing, in one batch. */
  fetchBlobs(gitDir: string, env: NodeJS.ProcessEnv, blobs: readonly string[]): Promise<void>;
}

/** What {@link writeTree} wrote. */
export interface WrittenTree {
  /** Files and symlinks written. */
  files: number;
  /** Their bytes: each file's size (see `checkedOutBytes`) plus each symlink's target length. */
  bytes: number;
  /** The index git read the commit's tree into (`gitformat-index`): the tree's manifest (manifest.ts). */
  index: Buffer;
}

/** What {@link writeTree} reports while it works. */
export interface WriteTreeOptions {
  onSubmodule: (path: string) => void;
  onProgress?: ((written: number, total: number) => void) | undefined;
  signal?: AbortSignal | undefined;
}

const SLASH = 0x2f;
/** Symlinks written between two turns of the event loop (see the loop that writes them). */
const SYMLINKS_PER_TURN = 64;

/**
 * Writes the tree of `source.commit` into the existing empty directory `target`, plus an empty `.git`
 * marker directory at its root.
 *
 * How: `target/.git` first serves as a git directory of the cache's own (`private-repo.ts`) that borrows
 * the objects read-only. `git read-tree` writes the tree's index there (`read-tree.ts`); the tree is
 * proven sound (`check-trees.ts`) while several `git checkout-index` processes write its regular files
 * (`checkout.ts`); symlinks are created last, by this function; `target/.git`
 * is then emptied.
 *
 * Guarantees: every regular file holds the blob's exact bytes (the private repository reads no
 * configuration and its `info/attributes` turns off eol conversion, `ident`, filters and re-encoding for
 * every path, whatever the tree's `.gitattributes` say), executables are created 0o755 and other files
 * 0o644 (less the umask), symlinks are real symlinks with the exact target, submodules are skipped and
 * reported to `onSubmodule`, directories holding no file do not appear. The tree is proven sound (no name
 * that is empty, `.`, `..`, `.git` in any case, or holds `/` or a backslash, no name twice, no mode git
 * cannot read: `check-trees.ts`) while git writes the regular files and before any symlink is created; an
 * unsound tree stops the writing and fails. Writes stay inside `target` whatever the tree: git refuses
 * paths with an empty, `.`, `..` or `.git` component when it reads the tree, creates files exclusively
 * and never writes through a symlink, and symlinks are created by this function only after every file and
 * directory exists. No object is fetched unless `source.partial` does it.
 *
 * Resolves to what it wrote: counts, and the very index git wrote the files from, which a cache slot
 * records as its manifest.
 *
 * Throws {@link BaselineError}: `EBADTREE` for a hostile or corrupt tree, the filesystem's code when it
 * refuses a write (naming the file), `EGIT` when git fails (a missing object: "is the repository
 * complete?"); `signal.reason` when aborted. On failure `target` holds a partial tree that the caller
 * removes (the staging directory of `cas.stage`, or the temp dir).
 */
export async function writeTree(
  source: TreeSource,
  target: string,
  options: WriteTreeOptions,
): Promise<WrittenTree> {
  const { signal } = options;
  signal?.throwIfAborted();
  const { commit } = source;
  const objectFormat = objectFormatOf(commit);
  const gitDir = join(target, ".git");
  const root = Buffer.from(target);
  const absolute = (path: Buffer) => Buffer.concat([root, Buffer.from([SLASH]), path]);
  try {
    await createPrivateRepo(gitDir, { alternates: source.objectDirs, objectFormat });
  } catch (error) {
    throw writeError(".git", error);
  }
  const env = { ...privateGitEnvironment(gitDir, target), GIT_INDEX_FILE: join(gitDir, "index") };
  try {
    let tree: TreeListing;
    try {
      tree = await readTree(commit, env, signal).catch(async (error: unknown) => {
        // A treeless clone lacks the trees themselves: fetch them once, and read again.
        if (signal?.aborted || source.partial === undefined || !(error instanceof BaselineError)) throw error;
        await source.partial.fetchTrees(gitDir, env, commit);
        return readTree(commit, env, signal);
      });
    } catch (error) {
      // git refused the tree, or it holds a bad name: walking it byte for byte says precisely why.
      if (signal?.aborted || !(error instanceof BaselineError)) throw error;
      await checkTrees(commit, env, signal);
      throw error;
    }
    const { index } = tree;
    if (source.partial) {
      const blobs = [...tree.files, ...tree.symlinks].map((entry) => entryOid(index, entry));
      await source.partial.fetchBlobs(gitDir, env, blobs);
    }
    // The symlinks' targets are read and checked while git writes the files; a bad one stops it.
    const links = tree.symlinks.map((link) => ({
      oid: entryOid(index, link),
      path: () => entryPath(index, link).toString("utf8"),
    }));
    const targets = readSymlinkTargets(env, links, signal);
    const verdict = new AbortController();
    targets.catch((error: unknown) => verdict.abort(error));
    // Is the tree sound? Usually the index and its cache-tree say so at once; otherwise every tree object
    // is read, which names the bad entry (or finds the tree sound after all). This runs while git writes
    // the regular files, which is safe (see above); an unsound tree stops the writing at once.
    let soundness: Promise<void> | undefined;
    const checkSoundness = () => {
      soundness ??= indexMatchesTrees(index) ? Promise.resolve() : checkTrees(commit, env, signal);
      soundness.catch((error: unknown) => verdict.abort(error));
    };
    const total = tree.files.length + tree.symlinks.length;
    let bytes = 0;
    try {
      bytes = await checkoutFiles(index, tree.files, {
        target,
        gitDir,
        env,
        makeDirectory: (path) => guarded(path, () => mkdirSync(absolute(path), { recursive: true })),
        onWritten: (written) => options.onProgress?.(written, total),
        onStarted: checkSoundness,
        signal: signal ? AbortSignal.any([signal, verdict.signal]) : verdict.signal,
      });
      checkSoundness();
      await soundness;
    } catch (error) {
      signal?.throwIfAborted();
      checkSoundness();
      await soundness;
      await targets;
      if (error instanceof CheckoutError) throw await explainCheckoutFailure(error, tree, env, absolute);
      throw error;
    }
    const symlinkTargets = await targets;

    // Last, so that no file or directory could have been written through one of them. Every directory
    // they need exists before the first is created.
    for (const link of tree.symlinks) {
      const path = entryPath(index, link);
      const slash = path.lastIndexOf(SLASH);
      if (slash > 0) guarded(path, () => mkdirSync(absolute(path.subarray(0, slash)), { recursive: true }));
    }
    let written = tree.files.length;
    let sinceTurn = 0;
    for (const link of tree.symlinks) {
      // A turn of the event loop now and then, so that an abort (Ctrl-C in the CLI) can land in a tree of
      // many symlinks instead of after the last one.
      if (++sinceTurn === SYMLINKS_PER_TURN) {
        sinceTurn = 0;
        await nextTurn();
      }
      signal?.throwIfAborted();
      const path = entryPath(index, link);
      const targetBytes = symlinkTargets.get(entryOid(index, link)) as Buffer;
      guarded(path, () => symlinkSync(targetBytes, absolute(path)));
      bytes += targetBytes.length;
      options.onProgress?.(++written, total);
    }
    // Reported only once the whole tree is known to be valid.
    for (const submodule of tree.submodules)
      options.onSubmodule(entryPath(index, submodule).toString("utf8"));
    return { files: total, bytes, index: index.bytes };
  } finally {
    // What remains is the `.git` marker: an empty directory.
    await emptyDirectory(gitDir).catch(() => {});
  }
}

/** Runs a filesystem write, turning its failure into a BaselineError that names the tree path. */
function guarded<T>(path: Buffer, write: () => T): T {
  try {
    return write();
  } catch (error) {
    throw writeError(path.toString("utf8"), error);
  }
}

/**
 * git says which file it could not write but not always why (a failed write has no errno in its
 * message): do the same step again here, which fails the same way with the filesystem's own code. When
 * the step succeeds here after all, git's message is the error.
 */
async function explainCheckoutFailure(
  error: CheckoutError,
  tree: TreeListing,
  env: NodeJS.ProcessEnv,
  absolute: (path: Buffer) => Buffer,
): Promise<BaselineError> {
  const { action, path, stderr } = error.failure;
  const gitFailed = () =>
    new BaselineError(
      "EGIT",
      action === "read"
        ? `git checkout-index cannot read an object (is the repository complete?): ${stderr}`
        : `git checkout-index failed: ${stderr}`,
      { cause: error },
    );
  if (path === undefined) return gitFailed();
  try {
    if (action === "mkdir") {
      mkdirSync(absolute(path));
    } else if (action === "create" || action === "exists") {
      closeSync(openSync(absolute(path), "wx", 0o644));
      unlinkSync(absolute(path));
    } else if (action === "write") {
      const file = tree.files.find((entry) => entryPath(tree.index, entry).equals(path));
      if (file !== undefined) await rewriteBlob(entryOid(tree.index, file), absolute(path), env);
    }
  } catch (reason) {
    return writeError(path.toString("utf8"), reason);
  }
  return gitFailed();
}

/** Writes one blob to `path` again, streamed, so a refused write fails here with its errno. */
async function rewriteBlob(oid: string, path: Buffer, env: NodeJS.ProcessEnv): Promise<void> {
  const batch = new CatFileBatch({ env });
  try {
    batch.request([oid]);
    batch.end();
    const header = await batch.readHeader();
    const fd = openSync(path, "w");
    try {
      await batch.streamBody(header.size, (chunk) => {
        for (let at = 0; at < chunk.length; ) at += writeSync(fd, chunk, at);
      });
    } finally {
      closeSync(fd);
    }
  } finally {
    batch.close();
  }
}
