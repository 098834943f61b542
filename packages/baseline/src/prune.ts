import type { Dirent } from "node:fs";
import { lstat, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { sweepStaleTemps } from "@cas-stage/cas";
import { baselinesDir, isSlotName, isTrashName, trashPathFor } from "./layout.js";

/**
 * Removes the baseline slots under `<cacheRoot>/baselines` not used (built or hit) for `olderThanMs`,
 * the trash left by an interrupted prune, and the temp dirs of builds that died, older than `olderThanMs`
 * (`cas.sweepStaleTemps`). Returns the removed paths (a slot is listed under its slot path).
 *
 * A slot stops looking complete in one step: it is renamed to a trash name, then deleted. A process killed
 * mid-prune thus leaves trash, never a half-deleted slot that a later call would take for a hit. Each slot's
 * mtime is re-read just before the rename, so a slot hit meanwhile is kept.
 *
 * A missing cache gives `[]`. Throws `RangeError` for a negative `olderThanMs`, and the filesystem error
 * (with its `code`) when the directory cannot be read or an entry cannot be removed.
 */
export async function pruneBaselines(cacheRoot: string, options: { olderThanMs: number }): Promise<string[]> {
  const { olderThanMs } = options;
  if (!(olderThanMs >= 0))
    throw new RangeError(`pruneBaselines: olderThanMs must be >= 0, got ${olderThanMs}`);
  const parent = baselinesDir(cacheRoot);
  let entries: Dirent[];
  try {
    entries = await readdir(parent, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const cutoff = Date.now() - olderThanMs;
  const removed: string[] = [];
  for (const entry of entries) {
    const path = join(parent, entry.name);
    if (isTrashName(entry.name)) {
      // Nothing ever reads a trash dir: remove it whatever its age.
      await rm(path, { recursive: true, force: true, maxRetries: 3 });
      removed.push(path);
      continue;
    }
    if (!isSlotName(entry.name)) continue;
    const stats = await lstat(path).catch(() => undefined);
    if (!stats?.isDirectory() || stats.mtimeMs > cutoff) continue;
    const trash = trashPathFor(cacheRoot, entry.name);
    try {
      await rename(path, trash);
    } catch (error) {
      // Another pruner took it first.
      if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw error;
    }
    // A hit may have touched the slot between the lstat and the rename: put such a slot back. When the
    // slot was rebuilt meanwhile, the rename back fails and the trash goes.
    const moved = await lstat(trash).catch(() => undefined);
    if (
      moved &&
      moved.mtimeMs > cutoff &&
      (await rename(trash, path).then(
        () => true,
        () => false,
      ))
    )
      continue;
    await rm(trash, { recursive: true, force: true, maxRetries: 3 });
    removed.push(path);
  }
  removed.push(...(await sweepStaleTemps(parent, { olderThanMs })));
  return removed;
}
