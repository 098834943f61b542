/**
 * Stable codes of {@link BaselineError}. Callers branch on these, never on the message text.
 *
 * - `ENOPATH`: the given path does not exist.
 * - `ENOTGITREPO`: the path is not inside a git working tree (or is inside a bare repository).
 * - `EOUTSIDEREPO`: the path is not inside the working tree that git found for it (for example it is inside
 *   the `.git` directory).
 * - `ENOCOMMITS`: HEAD has no commits yet, so there is no history to pick a baseline from.
 * - `ENOBASE`: no rung of the auto-detection ladder resolved; pass an explicit base.
 * - `ESHALLOW`: the repository is a shallow clone, where a merge-base cannot be trusted.
 * - `EUNKNOWNBASE`: an explicit base resolved neither locally, nor as `origin/<base>`, nor by fetching it.
 * - `EBADTREE`: the commit's tree holds an entry that cannot be written safely (a hostile or corrupt tree).
 * - a filesystem's own code (`ENOSPC`, `EACCES`, `EROFS`, `EEXIST` for two entries that collide on a
 *   case-insensitive filesystem, …) when the filesystem refused a write; `EWRITE` if it gave none.
 * - `EGIT`: a git command failed for another reason (its message is kept in `cause`).
 */
export type BaselineErrorCode =
  | "ENOPATH"
  | "ENOTGITREPO"
  | "EOUTSIDEREPO"
  | "ENOCOMMITS"
  | "ENOBASE"
  | "ESHALLOW"
  | "EUNKNOWNBASE"
  | "EBADTREE"
  | "EWRITE"
  | "EGIT"
  // A filesystem's errno code, such as "ENOSPC"; the `string & {}` keeps the named codes in completions.
  | (string & {});

/**
 * The error every function of this package throws for a failure it recognises. `message` says what failed,
 * on which path or revision, and what to do about it; `code` is stable; `cause` keeps the underlying error
 * (a git failure, a filesystem error) when there is one.
 */
export class BaselineError extends Error {
  readonly code: BaselineErrorCode;

  constructor(code: BaselineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BaselineError";
    this.code = code;
  }
}

/** The message of any thrown value, for wrapping it into a sentence. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
