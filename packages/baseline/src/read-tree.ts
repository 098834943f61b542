import { readFile } from "node:fs/promises";
import { BaselineError } from "./errors.js";
import { GitCommandError, runGit } from "./git-process.js";
import { type ParsedIndex, parseIndex } from "./index-file.js";

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

/**
 * Reads the tree of `commit` into the index at `env.GIT_INDEX_FILE` with `git read-tree` (git reads every
 * tree object and writes the sorted index in one fast step), then parses that index.
 *
 * Every path in the index stays inside the tree's root: git refuses a tree with an empty, `.`, `..` or
 * `.git` (any case) component ("invalid path"), whatever its configuration. That is not proof that the
 * tree is sound (a name holding `/` reads as two components here, and a symlink beside a directory of
 * the same name is silently dropped): that is `check-trees.ts`'s job.
 *
 * Throws {@link BaselineError} `EGIT` with git's message when read-tree fails (a missing object, or a
 * tree git itself refuses); `signal.reason` when aborted.
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
  const { count, modes } = index;
  const files = new Int32Array(count);
  let fileCount = 0;
  const symlinks: number[] = [];
  const submodules: number[] = [];
  for (let i = 0; i < count; i++) {
    const mode = modes[i];
    if (mode === MODE_SYMLINK) symlinks.push(i);
    else if (mode === MODE_GITLINK) submodules.push(i);
    else files[fileCount++] = i;
  }
  return { index, files: files.subarray(0, fileCount), symlinks, submodules };
}
