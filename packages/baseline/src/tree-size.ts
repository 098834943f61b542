import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

/**
 * The files (and symlinks) under `path` and the sum of their sizes, as a slot's record counts them: file
 * contents and symlink targets, not directories or blocks. Entries that vanish while being measured (a
 * concurrent deletion) are not counted. Never throws; a missing `path` measures zero.
 */
export async function measureTree(path: string): Promise<{ files: number; bytes: number }> {
  const stats = await lstat(path).catch(() => undefined);
  if (!stats) return { files: 0, bytes: 0 };
  if (!stats.isDirectory()) return { files: 1, bytes: stats.size };
  let files = 0;
  let bytes = 0;
  const pending = [path];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const child = join(dir, entry.name);
      if (entry.isDirectory()) {
        pending.push(child);
        continue;
      }
      const size = (await lstat(child).catch(() => undefined))?.size;
      if (size === undefined) continue;
      files++;
      bytes += size;
    }
  }
  return { files, bytes };
}
