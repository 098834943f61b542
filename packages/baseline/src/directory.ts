import { lstat, utimes } from "node:fs/promises";

/** Sets a directory's mtime to now; false when there is no directory at `path`. */
export async function touchDirectory(path: string): Promise<boolean> {
  const now = new Date();
  try {
    await utimes(path, now, now);
  } catch {
    return false;
  }
  return isDirectory(path);
}

export async function isDirectory(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => undefined))?.isDirectory() ?? false;
}
