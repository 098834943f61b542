import { type BytePath, displayPath } from "./byte-path.js";
import { codeOf, messageOf, StageCacheError } from "./errors.js";

/**
 * The error for a source entry that cannot be listed, opened or read: the filesystem's code, the entry's
 * path, and what to do. `action` is what was being done ("copy", "hash", "list"). A StageCacheError (such
 * as ESOURCECHANGED) passes through unchanged.
 */
export function sourceError(action: string, path: BytePath, cause: unknown): StageCacheError {
  if (cause instanceof StageCacheError) return cause;
  const code = codeOf(cause) ?? "EIO";
  const shown = displayPath(path);
  const hint =
    code === "EACCES" || code === "EPERM"
      ? `make the ${action === "list" ? "directory" : "file"} readable, or move it into a dot-directory or node_modules (which are not copied)`
      : code === "ENOENT"
        ? `it disappeared while being ${action === "copy" ? "copied" : "read"}: the source changed during the stage; retry once it is stable`
        : "check the source, then retry";
  return new StageCacheError(code, `cannot ${action} ${shown}: ${messageOf(cause)}; ${hint}`, {
    path: shown,
    cause,
  });
}

/**
 * The error for a part of a copy that cannot be written into the cache (a directory, or the file copied
 * from `source`): the filesystem's code, the path in the cache, and what to do.
 */
export function targetError(target: BytePath, cause: unknown, source?: BytePath): StageCacheError {
  const code = codeOf(cause) ?? "EIO";
  const shown = displayPath(target);
  const what =
    source === undefined
      ? `cannot create directory ${shown}`
      : `cannot copy ${displayPath(source)} to ${shown}`;
  return new StageCacheError(code, `${what}: ${messageOf(cause)}; ${targetHint(code)}`, {
    path: shown,
    cause,
  });
}

function targetHint(code: string): string {
  switch (code) {
    case "ENOSPC":
    case "EDQUOT":
      return "the cache's filesystem is full (no space or no inodes left, or over quota): free some, or use a cache dir on another filesystem";
    case "ENAMETOOLONG":
      return "the path in the cache is longer than its filesystem allows: use a shorter cache dir (CAS_STAGE_CACHE_DIR) or a shallower source";
    case "EACCES":
    case "EPERM":
    case "EROFS":
      return "the cache cannot be written: pass a writable cache dir or set CAS_STAGE_CACHE_DIR";
    default:
      return "check the cache directory, then retry";
  }
}
