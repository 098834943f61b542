import { realpathSync, statSync } from "node:fs";
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { BaselineError } from "./errors.js";
import { GitAdapter, type RepoSurvey } from "./git.js";

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
  /** The merge-base of HEAD with `@{upstream}` (undefined when there is none), when it was asked for. */
  upstream?: Promise<string | undefined> | undefined;
  /**
   * git's abbreviation (`rev-parse --short`) of the merge-base `upstream` when it was asked for, else of
   * the commit `verify` names; undefined when there is none. Started with the other git processes, so that
   * a caller who needs it does not wait for one more git process at the end.
   */
  abbreviation?: Promise<string | undefined> | undefined;
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

/** What {@link locateRepo} is asked besides the path. */
export interface LocateRequest {
  /** A revision to resolve to a commit in the same `rev-parse` (`RepoLocation.verified`). */
  verify?: string | undefined;
  /** Also start `git merge-base HEAD @{upstream}` beside it (`RepoLocation.upstream`). */
  upstream?: boolean | undefined;
}

/** The git processes of one locate, started. */
interface Started {
  key: string;
  cwd: string | undefined;
  survey: Promise<RepoSurvey> | undefined;
  upstream: Promise<string | undefined> | undefined;
  abbreviation: Promise<string | undefined> | undefined;
}

/** A locate started ahead by {@link startLocating}, which the next matching {@link locateRepo} takes. */
let headStart: Started | undefined;

/**
 * Starts now the git processes that a later {@link locateRepo} with the same path and request needs.
 * The CLI calls it before loading the rest of the package, so git's start-up overlaps module loading on
 * the path of a cache hit. Errors surface in that later call; nothing else observes the head start.
 */
export function startLocating(path: string, request: LocateRequest): void {
  headStart = start(resolve(path), request, undefined);
}

function start(absolute: string, request: LocateRequest, signal: AbortSignal | undefined): Started {
  const key = JSON.stringify([absolute, request.verify ?? null, request.upstream ?? false]);
  const cwd = gitCwdFor(absolute);
  if (cwd === undefined) return { key, cwd, survey: undefined, upstream: undefined, abbreviation: undefined };
  const git = new GitAdapter(cwd, signal);
  const survey = git.survey(request.verify);
  const upstream = request.upstream ? git.mergeBase("HEAD", "@{upstream}") : undefined;
  const verify = request.verify;
  const abbreviation = upstream
    ? upstream.then((commit) => (commit === undefined ? undefined : git.shortName(commit)))
    : verify === undefined
      ? undefined
      : git.shortName(verify);
  // Awaited (or deliberately ignored) later; never an unhandled rejection meanwhile.
  survey.catch(() => {});
  upstream?.catch(() => {});
  abbreviation?.catch(() => {});
  return { key, cwd, survey, upstream, abbreviation };
}

/**
 * Locates `path` in its working tree before any expensive work, in one `git rev-parse`, which also
 * resolves `request.verify` to a commit; with `request.upstream`, the merge-base of HEAD with the
 * branch's upstream is computed beside it, so a caller that needs both waits for one git process.
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
  request: LocateRequest = {},
): Promise<RepoLocation> {
  const absolute = resolve(path);
  const ahead = headStart;
  headStart = undefined;
  const started =
    ahead?.key === JSON.stringify([absolute, request.verify ?? null, request.upstream ?? false])
      ? ahead
      : start(absolute, request, signal);
  if (started.survey === undefined) {
    throw new BaselineError("ENOPATH", `path ${absolute} does not exist; pass an existing directory`, {
      path: absolute,
    });
  }
  const survey = await started.survey;
  signal?.throwIfAborted();
  if (survey.kind === "git-dir") {
    throw new BaselineError(
      "EOUTSIDEREPO",
      `path ${absolute} is inside a .git directory, not in the working tree; pass a directory of the checkout`,
      { path: absolute },
    );
  }
  if (survey.kind === "bare") {
    throw new BaselineError(
      "ENOTGITREPO",
      `path ${absolute} is in a bare repository, which has no working tree; pass a directory of a checkout`,
      { path: absolute },
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
      { path: absolute },
    );
  }
  return {
    root,
    relativePath,
    commonDir: resolve(survey.commonDir),
    shallow: survey.shallow,
    objectFormat: survey.objectFormat,
    verified: survey.commit,
    upstream: started.upstream,
    abbreviation: started.abbreviation,
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
      { path: repo, cause: new Error(stderr) },
    );
  }
  return new BaselineError(
    "ENOTGITREPO",
    `path ${path} is not inside a git working tree; run from a checkout or pass a path inside one`,
    { path, cause: new Error(stderr) },
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
