/**
 * The one shape of every error the cas-stage packages throw for a failure they recognise (programming errors
 * stay `TypeError`/`RangeError`, aborts stay `signal.reason`):
 *
 * - `code`: stable, for branching. A filesystem's own errno code (`ENOENT`, `ENOSPC`, `EACCES`, …) when the
 *   failure came from the filesystem, otherwise a package-specific code documented by that package.
 * - `path`: the file or directory concerned, when there is one.
 * - `cause`: the underlying error, kept whole.
 * - `message`: what failed, on which path, and what to do about it.
 *
 * `@cas-stage/baseline` and `@cas-stage/stage-cache` extend it, so `error instanceof CasError` and
 * `error.code` work the same whichever package threw.
 */
export class CasError extends Error {
  readonly code: string;
  readonly path: string | undefined;

  constructor(code: string, message: string, options: { path?: string | undefined; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "CasError";
    this.code = code;
    this.path = options.path;
  }
}

/** Which step of {@link stage} failed: creating the temp dir, or publishing it into its slot. */
export type StagePhase = "tmp" | "finalize";

/**
 * A failure of the staging machinery itself (never of the caller's `build` or `adopt`, whose errors
 * propagate unwrapped).
 *
 * - `phase: "tmp"`: the temp dir could not be created inside `parent` (a missing parent gives `code:
 *   "ENOENT"`). Nothing was written. `path` is `parent`.
 * - `phase: "finalize"`: the slot could not be published (the rename failed, or the slot already existed)
 *   and `adopt()` did not recognise a finished peer. The temp dir has been removed; the slot is untouched.
 *   `path` is `final`.
 *
 * `message` is `"<prefix>: <cause message>"`, `cause` is the original error, and `code` is copied from it
 * (for example `ENOENT`, `ENOTEMPTY`, `EEXIST`, `EXDEV`; `EIO` when the cause had none).
 */
export class StageError extends CasError {
  readonly phase: StagePhase;

  constructor(phase: StagePhase, prefix: string, cause: unknown, path?: string) {
    super(codeOf(cause) ?? "EIO", `${prefix}: ${messageOf(cause)}`, { path, cause });
    this.name = "StageError";
    this.phase = phase;
  }
}

/** The `code` of an error, when it is a string (an errno code such as `ENOENT`). */
export function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The message of an Error, or the string form of any other thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
