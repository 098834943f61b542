import { realpathSync, statSync } from "node:fs";
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { BaselineError } from "./errors.js";
import { GitAdapter } from "./git.js";

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
  /** The repository's object format: SHA-1 or SHA-256 object ids. */
  objectFormat: "sha1" | "sha256";
  /** The commit that the `verify` revision given to {@link locateRepo} names, if it names one. */
  verified: string | undefined;
}

/**
 * The top level of the git working tree containing `path` (a directory or a file), or undefined when
 * `path` does not exist or is not inside a working tree (outside any repository, inside a `.git`
 * directory, in a bare repository, in a repository git refuses to read). Linked worktrees, whose `.git`
 * is a file, give their own top level. Runs one `git rev-parse`; throws only for an aborted `signal`,
 * a git that cannot run (`EGIT`) or is too old (`EGITVERSION`).
 */
export async function findRepoRoot(path: string, signal?: AbortSignal): Promise<string | undefined> {
  const cwd = gitCwdFor(resolve(path));
  if (cwd === undefined) return undefined;
  const survey = await new GitAdapter(cwd, signal).survey();
  return survey.kind === "work-tree" ? survey.topLevel : undefined;
}

/**
 * Locates `path` in its working tree before any expensive work, in one `git rev-parse`, which also
 * resolves the revision `verify` (to `RepoLocation.verified`) when given. `beside` is called with the
 * directory git runs in just before, to start other git work at the same time.
 *
 * Throws {@link BaselineError}: `ENOPATH` when `path` does not exist; `ENOTGITREPO` when it is not inside
 * a working tree or is in a bare repository; `EUNSAFEREPO` when git refuses the repository as owned by
 * someone else (the message quotes git and gives the `safe.directory` command); `EOUTSIDEREPO` when it is
 * not inside the working tree git found for it (inside `.git`, or reached through a symlink); `EGIT` /
 * `EGITVERSION` when git cannot run or is older than 2.31.
 */
export async function locateRepo(
  path: string,
  signal?: AbortSignal,
  verify?: string,
  beside?: (cwd: string) => void,
): Promise<RepoLocation> {
  const absolute = resolve(path);
  const cwd = gitCwdFor(absolute);
  if (cwd === undefined) {
    throw new BaselineError("ENOPATH", `path ${absolute} does not exist; pass an existing directory`);
  }
  beside?.(cwd);
  const survey = await new GitAdapter(cwd, signal).survey(verify);
  if (survey.kind === "git-dir") {
    throw new BaselineError(
      "EOUTSIDEREPO",
      `path ${absolute} is inside a .git directory, not in the working tree; pass a directory of the checkout`,
    );
  }
  if (survey.kind === "bare") {
    throw new BaselineError(
      "ENOTGITREPO",
      `path ${absolute} is in a bare repository, which has no working tree; pass a directory of a checkout`,
    );
  }
  if (survey.kind === "refused") throw refusal(absolute, survey.refusal);
  // git reports the real path of the top level; compare like with like (macOS /tmp is /private/tmp).
  const real = realpathSync.native(absolute);
  const root = resolve(survey.topLevel);
  const relativePath = relative(root, real);
  if (relativePath === ".." || relativePath.startsWith(`..${sep}`) || isAbsolute(relativePath)) {
    throw new BaselineError(
      "EOUTSIDEREPO",
      `path ${absolute} (really ${real}) is outside the working tree ${root}; pass a path inside it`,
    );
  }
  return {
    root,
    relativePath,
    commonDir: resolve(survey.commonDir),
    shallow: survey.shallow,
    objectFormat: survey.objectFormat,
    verified: survey.commit,
  };
}

/** The error for a git that would not look at the repository around `path`. */
function refusal(path: string, stderr: string): BaselineError {
  const dubious = /detected dubious ownership in repository at '(.*)'/.exec(stderr);
  if (dubious) {
    const repo = dubious[1] as string;
    return new BaselineError(
      "EUNSAFEREPO",
      `git refuses to read the repository at ${repo}: ${dubious[0]} (it belongs to another user). If you trust it, allow it with: git config --global --add safe.directory ${repo}`,
      { cause: new Error(stderr) },
    );
  }
  return new BaselineError(
    "ENOTGITREPO",
    `path ${path} is not inside a git working tree; run from a checkout or pass --path inside one`,
    { cause: new Error(stderr) },
  );
}

/** The directory to run git in for `path`: itself when a directory, its parent for a file. */
function gitCwdFor(path: string): string | undefined {
  try {
    return statSync(path).isDirectory() ? path : dirname(path);
  } catch {
    return undefined;
  }
}
