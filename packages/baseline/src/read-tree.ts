import { readFile } from "node:fs/promises";
import { BaselineError } from "./errors.js";
import { GitCommandError, runGit } from "./git-process.js";
import { type ParsedIndex, parseIndex } from "./index-file.js";
import { checkEntryName } from "./tree.js";

/** Every entry of a commit's tree, from the index `git read-tree` wrote for it, by entry number. */
export interface TreeListing {
  index: ParsedIndex;
  /** Regular files, in the index's (bytewise) order. */
  files: Int32Array;
  symlinks: number[];
  /** Submodules (gitlinks), which are not written. */
  submodules: number[];
}

const MODE_SYMLINK = 0o120000;
const MODE_GITLINK = 0o160000;
const DOT = 0x2e;
const SLASH = 0x2f;
const BACKSLASH = 0x5c;

/**
 * Reads the tree of `commit` into the index at `env.GIT_INDEX_FILE` with `git read-tree` (git reads every
 * tree object and writes the sorted index in one fast step), then parses that index. Every path component
 * is checked with {@link checkEntryName}, so every path stays inside the tree's root; this is not proof
 * that the tree is sound (a name holding `/` cannot be told from two components here): that is
 * `check-trees.ts`'s job.
 *
 * Throws {@link BaselineError} `EBADTREE` for a bad path component, `EGIT` with git's message when
 * read-tree fails (a missing object, or a tree git itself refuses); `signal.reason` when aborted.
 */
export async function readTree(
  commit: string,
  env: NodeJS.ProcessEnv,
  signal?: AbortSignal,
): Promise<TreeListing> {
  const result = await runGit(["read-tree", commit], { env, signal });
  if (result.code !== 0) {
    throw new BaselineError("EGIT", `cannot read the tree of ${commit}: ${result.stderr.trim()}`, {
      cause: new GitCommandError(`git read-tree ${commit} failed`, result),
    });
  }
  const index = parseIndex(await readFile(env.GIT_INDEX_FILE as string), commit.length / 2);
  const { bytes, count, modes, pathStarts, pathEnds } = index;
  const files = new Int32Array(count);
  let fileCount = 0;
  const symlinks: number[] = [];
  const submodules: number[] = [];
  for (let i = 0; i < count; i++) {
    checkPath(bytes, pathStarts[i] as number, pathEnds[i] as number);
    const mode = modes[i];
    if (mode === MODE_SYMLINK) symlinks.push(i);
    else if (mode === MODE_GITLINK) submodules.push(i);
    else files[fileCount++] = i;
  }
  return { index, files: files.subarray(0, fileCount), symlinks, submodules };
}

/**
 * Checks every component of the path `bytes[start, end)` with {@link checkEntryName}, looking closely
 * only when a component could be bad (empty, or starting with a dot) or a backslash or NUL appears.
 */
function checkPath(bytes: Buffer, start: number, end: number): void {
  let suspect = start === end || bytes[end - 1] === SLASH;
  for (let i = start; i < end && !suspect; i++) {
    const byte = bytes[i];
    if (byte === BACKSLASH || byte === 0) suspect = true;
    else if ((i === start || bytes[i - 1] === SLASH) && (byte === DOT || byte === SLASH)) suspect = true;
  }
  if (!suspect) return;
  const path = bytes.subarray(start, end);
  for (let from = 0; ; ) {
    const slash = path.indexOf(SLASH, from);
    checkEntryName(
      path.subarray(from, slash < 0 ? path.length : slash),
      path.subarray(0, Math.max(0, from - 1)),
    );
    if (slash < 0) return;
    from = slash + 1;
  }
}
