import { CasError, messageOf } from "@cas-stage/cas/errors";

/**
 * Stable codes of {@link BaselineError}. Callers branch on these, never on the message text.
 *
 * - `ENOPATH`: the given path does not exist.
 * - `ENOTGITREPO`: the path is not inside a git working tree, or is inside a bare repository.
 * - `EUNSAFEREPO`: git refused to read the repository because another user owns it ("dubious
 *   ownership"); the message quotes git and names the `safe.directory` setting that allows it.
 * - `EOUTSIDEREPO`: the path is not inside the working tree that git found for it (for example it is inside
 *   the `.git` directory).
 * - `ENOCOMMITS`: HEAD has no commits yet, so there is no history to pick a baseline from.
 * - `ENOBASE`: no rung of the auto-detection ladder resolved; pass an explicit base.
 * - `ESHALLOW`: the repository is a shallow clone, where a merge-base cannot be trusted.
 * - `EUNKNOWNBASE`: an explicit base resolved neither locally, nor as `origin/<base>`, nor by fetching it
 *   (the remote answered that it has no such revision), or it names no single commit (a range, say).
 * - `EFETCH`: fetching from a remote failed (network, authentication, a missing remote): git's message is
 *   kept. Also for the objects a partial clone lacks, with how many and from which remote.
 * - `EBADTREE`: the commit's tree holds an entry that cannot be written safely (a hostile or corrupt tree).
 * - a filesystem's own code (`ENOSPC`, `EACCES`, `EROFS`, `EEXIST` for two entries that collide on a
 *   case-insensitive filesystem, …) when the filesystem refused a write; `EWRITE` if it gave none.
 * - `EGIT`: a git command failed for another reason (its message is kept in `cause`), or git is missing.
 * - `EGITVERSION`: git is older than 2.31.
 *
 * The cache's own functions add (see their doc comments):
 * - `ENOENT`: {@link removeBaseline} found no cached slot for the commit.
 * - `EBUSY`: {@link removeBaseline} refused a slot used within `minAgeMs` (pass `force`).
 * - `EAMBIGUOUS`: {@link removeBaseline} was given a commit prefix that names several slots.
 * - `EINVAL`: a commit argument that is not hexadecimal.
 * - `EAGAIN`: a slot could not be published because other processes kept evicting it.
 * - a filesystem's code (`EACCES`, `EPERM`, `EROFS`, `ENOTDIR`, …) when the cache directory cannot be
 *   created or written; the message says to pass a writable cache dir or set `CAS_STAGE_CACHE_DIR`.
 */
export type BaselineErrorCode =
  | "ENOPATH"
  | "ENOTGITREPO"
  | "EUNSAFEREPO"
  | "EOUTSIDEREPO"
  | "ENOCOMMITS"
  | "ENOBASE"
  | "ESHALLOW"
  | "EUNKNOWNBASE"
  | "EFETCH"
  | "EBADTREE"
  | "EWRITE"
  | "EGIT"
  | "EBUSY"
  | "EAMBIGUOUS"
  | "EINVAL"
  | "EAGAIN"
  | "EGITVERSION"
  // A filesystem's errno code, such as "ENOSPC"; the `string & {}` keeps the named codes in completions.
  | (string & {});

/**
 * The error every function of this package throws for a failure it recognises: a `CasError` from
 * `@cas-stage/cas` (so `instanceof CasError` holds), with a stable `code`, the `path` concerned when there
 * is one, and `cause` keeping the underlying error (a git failure, a filesystem error). `message` says what
 * failed, on which path or revision, and what to do about it.
 */
export class BaselineError extends CasError {
  declare readonly code: BaselineErrorCode;

  constructor(
    code: BaselineErrorCode,
    message: string,
    options?: { path?: string | undefined; cause?: unknown },
  ) {
    super(code, message, options);
    this.name = "BaselineError";
  }
}

export { messageOf };

/**
 * A write the filesystem refused, as a BaselineError with the errno code, naming the tree path and
 * saying what to do for the usual causes.
 */
export function writeError(display: string, error: unknown): BaselineError {
  if (error instanceof BaselineError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const errno = typeof code === "string" ? code : "EWRITE";
  const hint =
    errno === "EEXIST"
      ? " (two tree entries map to one file name, as happens on a case-insensitive filesystem)"
      : "";
  const advice =
    errno === "ENOSPC" || errno === "EDQUOT"
      ? "; free space on that filesystem or use another cache directory"
      : errno === "EACCES" || errno === "EPERM" || errno === "EROFS"
        ? "; the cache directory (or the OS temp dir without a cache) must be writable"
        : "";
  return new BaselineError(errno, `cannot write ${display}${hint}: ${messageOf(error)}${advice}`, {
    cause: error,
  });
}
