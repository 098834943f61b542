/**
 * An error of the stage cache that is not a programming error (those are TypeErrors) and not an abort.
 *
 * `code` is stable and meant for branching; it is the errno code of the underlying failure:
 *
 * | code | when |
 * |---|---|
 * | `ENOENT` | the source directory does not exist |
 * | `ENOTDIR` | the source is not a directory, or the cache root lies under a file |
 * | `EACCES`, `EPERM`, `EROFS`, … | a source file cannot be read, or the cache root cannot be written |
 * | `ENOSPC`, `ENAMETOOLONG`, … | a directory or file of a copy cannot be created in the cache |
 * | `ESOURCECHANGED` | a source directory or file was replaced while it was read (platforms without /proc) |
 * | `ECLOSED` | the cache was closed |
 *
 * `path` names the file or directory concerned and `cause` keeps the original error.
 */
export class StageCacheError extends Error {
  readonly code: string;
  readonly path: string | undefined;

  constructor(code: string, message: string, options: { path?: string; cause?: unknown } = {}) {
    super(`stage-cache: ${message}`, { cause: options.cause });
    this.name = "StageCacheError";
    this.code = code;
    this.path = options.path;
  }
}

/** The errno code of an error, if it has one. */
export function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The message of an error or the string form of anything else. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
