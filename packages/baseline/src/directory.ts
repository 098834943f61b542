import { lstatSync, utimesSync } from "node:fs";

// Synchronous on purpose: these are single metadata calls on the path of a cache hit, where a round
// trip through the thread pool costs more than the call itself.

/** Sets a directory's mtime to now; false when there is no directory at `path`. */
export function touchDirectory(path: string): boolean {
  const now = new Date();
  try {
    utimesSync(path, now, now);
  } catch {
    return false;
  }
  return isDirectory(path);
}

/** Whether `path` is a directory (not a symlink to one). */
export function isDirectory(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}
