import { realpath, stat } from "node:fs/promises";
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { BaselineError } from "./errors.js";
import { GitAdapter, GitCommandError } from "./git.js";

/** Where a user's path sits: its working tree, and what git needs to read the repository. */
export interface RepoLocation {
  /** Top level of the working tree (for a linked worktree, that worktree's top level). */
  root: string;
  /** The path relative to `root` ("" for the root itself), with the platform's separators. */
  relativePath: string;
  /** The repository's common git directory (shared by all linked worktrees); holds `objects/`. */
  commonDir: string;
  /** Whether the repository is a shallow clone. */
  shallow: boolean;
}

/**
 * The top level of the git working tree containing `path` (a directory or a file), or undefined when
 * `path` does not exist or is not inside a working tree (outside any repository, inside a `.git`
 * directory, in a bare repository). Linked worktrees, whose `.git` is a file, give their own top level.
 * Runs one `git rev-parse`; never throws for these answers, only for an aborted `signal`.
 */
export async function findRepoRoot(path: string, signal?: AbortSignal): Promise<string | undefined> {
  const cwd = await gitCwdFor(path);
  if (cwd === undefined) return undefined;
  try {
    return (await new GitAdapter(cwd, signal).workingTree()).topLevel;
  } catch (error) {
    if (error instanceof GitCommandError) return undefined;
    throw error;
  }
}

/**
 * Locates `path` in its working tree before any expensive work. Throws {@link BaselineError}: `ENOPATH`
 * when it does not exist, `ENOTGITREPO` when it is not inside a working tree, `EOUTSIDEREPO` when it is
 * not inside the working tree git found for it (inside `.git`, or reached through a symlink).
 */
export async function locateRepo(path: string, signal?: AbortSignal): Promise<RepoLocation> {
  const absolute = resolve(path);
  const cwd = await gitCwdFor(absolute);
  if (cwd === undefined) {
    throw new BaselineError("ENOPATH", `path ${absolute} does not exist; pass an existing directory`);
  }
  const git = new GitAdapter(cwd, signal);
  let tree: { topLevel: string; commonDir: string; shallow: boolean };
  try {
    tree = await git.workingTree();
  } catch (error) {
    if (!(error instanceof GitCommandError)) throw error;
    const where = await git.location();
    if (where === "git-dir") {
      throw new BaselineError(
        "EOUTSIDEREPO",
        `path ${absolute} is inside a .git directory, not in the working tree; pass a directory of the checkout`,
        { cause: error },
      );
    }
    throw new BaselineError(
      "ENOTGITREPO",
      where === "bare"
        ? `path ${absolute} is in a bare repository, which has no working tree; pass a directory of a checkout`
        : `path ${absolute} is not inside a git working tree; run from a checkout or pass --path inside one`,
      { cause: error },
    );
  }
  // git reports the real path of the top level; compare like with like (macOS /tmp is /private/tmp).
  const real = await realpath(absolute);
  const root = resolve(tree.topLevel);
  const relativePath = relative(root, real);
  if (relativePath === ".." || relativePath.startsWith(`..${sep}`) || isAbsolute(relativePath)) {
    throw new BaselineError(
      "EOUTSIDEREPO",
      `path ${absolute} (really ${real}) is outside the working tree ${root}; pass a path inside it`,
    );
  }
  return { root, relativePath, commonDir: resolve(tree.commonDir), shallow: tree.shallow };
}

/** The directory to run git in for `path`: itself when a directory, its parent for a file. */
async function gitCwdFor(path: string): Promise<string | undefined> {
  const stats = await stat(path).catch(() => undefined);
  if (!stats) return undefined;
  return stats.isDirectory() ? path : dirname(path);
}
