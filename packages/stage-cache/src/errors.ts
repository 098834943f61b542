import { CasError, codeOf, messageOf } from "@cas-stage/cas/errors";

export { codeOf, messageOf };

/**
 * An error of the stage cache that is not a programming error (those are TypeErrors and RangeErrors) and not
 * an abort (that rejects with `signal.reason`). It is a `CasError`, the one error shape of the cas-stage
 * packages: `code`, `path` (the file or directory concerned), `cause` (the original error, kept whole) and a
 * message that says what failed and what to do.
 *
 * `code` is stable and meant for branching:
 *
 * | code | when |
 * |---|---|
 * | `ENOENT` | the source directory does not exist, or a file vanished while being copied |
 * | `ENOTDIR` | the source is not a directory, or the cache root lies under a file |
 * | `EACCES`, `EPERM`, `EROFS`, … | the filesystem's own code: a source file cannot be read, the cache root cannot be written, a shared entry cannot be read by this user |
 * | `ENOSPC`, `ENAMETOOLONG`, … | a directory or file of a copy cannot be created in the cache |
 * | `ESOURCECHANGED` | a source directory or file was replaced while it was read (platforms without /proc) |
 * | `ESOURCEINCACHE` | the source lies inside the cache root (it would copy the cache into itself) |
 * | `EAGAIN` | the entry was evicted again after every one of several builds (a cap far too small for the load) |
 * | `ECLOSED` | the cache was closed |
 */
export class StageCacheError extends CasError {
  constructor(code: string, message: string, options: { path?: string | undefined; cause?: unknown } = {}) {
    super(code, `stage-cache: ${message}`, options);
    this.name = "StageCacheError";
  }
}

/** The error for a cache root (or a private directory in it) that cannot be created or written. */
export function cacheRootError(root: string, cause: unknown): StageCacheError {
  return new StageCacheError(
    codeOf(cause) ?? "EIO",
    `cannot write to cache root ${root}: ${messageOf(cause)}; pass a writable root or set CAS_STAGE_CACHE_DIR`,
    { path: root, cause },
  );
}

/**
 * A failure that reached the cache from below without being one of its own errors: a `CasError` of the
 * entry store, or a bare filesystem error. Turned into a {@link StageCacheError} with the same code and path,
 * so callers see one class; the original stays as `cause`. Anything without a string code (an abort
 * reason, a programming error) is returned as it is.
 */
export function asStageCacheError(error: unknown, fallbackPath: string): unknown {
  if (error instanceof StageCacheError) return error;
  const code = codeOf(error);
  if (code === undefined) return error;
  const path = error instanceof CasError ? error.path : ((error as { path?: unknown }).path as string);
  return new StageCacheError(code, messageOf(error), { path: path ?? fallbackPath, cause: error });
}
