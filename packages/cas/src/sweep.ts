import type { Dirent } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { codeOf } from "./errors.js";
import { removeTree } from "./fs.js";
import { isStageTempName } from "./temp-name.js";

const DAY_MS = 24 * 60 * 60 * 1000;

export interface SweepStaleTempsOptions {
  /** Only temp dirs whose mtime is at least this old are removed. Default 24 hours. 0 removes all. */
  olderThanMs?: number;
}

/**
 * Removes the debris of `stage` calls whose process died mid-build: directories directly inside `parent`
 * named like a temp dir (`<name>.tmp.XXXXXX`) whose mtime is at least `olderThanMs` old.
 *
 * Returns the removed paths. Touches nothing else: no slot, no file, no other name, nothing deeper than one
 * level. A missing `parent` gives `[]`. A temp dir that vanishes meanwhile (another sweeper) is skipped.
 *
 * A temp dir younger than `olderThanMs` may belong to a build still running; with `olderThanMs: 0` such a
 * build loses its temp dir and its `stage` call fails, so use 0 only when no stage can be running.
 *
 * Throws the filesystem error (with its `code`) when `parent` cannot be read or a temp dir cannot be removed.
 */
export async function sweepStaleTemps(
  parent: string,
  options: SweepStaleTempsOptions = {},
): Promise<string[]> {
  const olderThanMs = options.olderThanMs ?? DAY_MS;
  if (!(olderThanMs >= 0))
    throw new RangeError(`sweepStaleTemps: olderThanMs must be >= 0, got ${olderThanMs}`);

  let entries: Dirent[];
  try {
    entries = await readdir(parent, { withFileTypes: true });
  } catch (error) {
    if (codeOf(error) === "ENOENT") return [];
    throw error;
  }

  // With 0, every temp goes: a file system's nanosecond mtime can be a little ahead of Date.now().
  const cutoff = olderThanMs === 0 ? Number.POSITIVE_INFINITY : Date.now() - olderThanMs;
  const removed: string[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || !isStageTempName(entry.name)) continue;
    const path = join(parent, entry.name);
    const stats = await lstat(path).catch(() => undefined);
    if (!stats?.isDirectory() || stats.mtimeMs > cutoff) continue;
    await removeTree(path);
    removed.push(path);
  }
  return removed;
}
