import { randomBytes } from "node:crypto";
import { readdir, rename } from "node:fs/promises";
import { basename, join } from "node:path";
import { codeOf } from "./errors.js";
import { removeTree } from "./fs.js";

/**
 * Slots leave a cache through a trash directory: a slot is renamed into it in one step (so it is whole or
 * gone, never half-deleted under its own name) and deleted there.
 *
 * Only the process that moved a slot into the trash may move it back, and only at once, while its own name
 * still holds it. Anyone else who deletes trash first renames it to a `.deleting` name: a restore then finds
 * nothing to rename and gives up, so no restore can ever resurrect a half-deleted tree.
 *
 * ```
 * <trashDir>/<slot name>.<ms since epoch, base 36>.<12 hex>             moved here by one evictor
 * <trashDir>/<slot name>.<ms since epoch, base 36>.<12 hex>.deleting    being deleted by anyone
 * ```
 */
const TRASH_NAME = /\.([0-9a-z]+)\.[0-9a-f]{12}$/;
const DELETING_SUFFIX = ".deleting";

/** A fresh trash path for `slot`; the time in its name lets others tell abandoned trash. */
export function trashPathFor(trashDir: string, slot: string, now = Date.now()): string {
  return join(trashDir, `${basename(slot)}.${now.toString(36)}.${randomBytes(6).toString("hex")}`);
}

/** When a trash name was made (ms since the epoch), or undefined for a name this module did not make. */
export function trashCreatedAt(name: string): number | undefined {
  const match = TRASH_NAME.exec(name);
  if (!match?.[1]) return undefined;
  const time = Number.parseInt(match[1], 36);
  return Number.isFinite(time) ? time : undefined;
}

/**
 * Whether {@link removeAbandonedTrash} with this `graceMs` removes the trash entry called `name` at `now`: a
 * `.deleting` name, a trash name made at least `graceMs` ago, or a name this module did not make. Exported so
 * that listings and dry runs predict exactly what a clean removes.
 */
export function isAbandonedTrash(name: string, graceMs: number, now: number = Date.now()): boolean {
  if (name.endsWith(DELETING_SUFFIX)) return true;
  const createdAt = trashCreatedAt(name);
  return createdAt === undefined || createdAt <= now - graceMs;
}

/** What {@link removeAbandonedTrash} removed. */
export interface RemovedTrash {
  paths: string[];
}

/**
 * Deletes the trash no evictor can still restore: every `.deleting` dir, every trash dir made at least
 * `graceMs` ago, and any name this module did not make. Each is first renamed to its `.deleting` name, so
 * a slow evictor that comes back to restore it finds nothing (see the module comment). A missing trash dir
 * removes nothing. Failures to remove go to `onWarning`; never throws.
 */
export async function removeAbandonedTrash(
  trashDir: string,
  options: { graceMs: number; onWarning?: (message: string, path: string) => void; now?: number },
): Promise<RemovedTrash> {
  const now = options.now ?? Date.now();
  const paths: string[] = [];
  let names: string[];
  try {
    names = await readdir(trashDir);
  } catch (error) {
    if (codeOf(error) === "ENOENT" || codeOf(error) === "ENOTDIR") return { paths };
    options.onWarning?.(`cannot list the trash: ${(error as Error).message}`, trashDir);
    return { paths };
  }
  for (const name of names) {
    const path = join(trashDir, name);
    if (!isAbandonedTrash(name, options.graceMs, now)) continue;
    let doomed = path;
    if (!name.endsWith(DELETING_SUFFIX)) {
      doomed = path + DELETING_SUFFIX;
      try {
        await rename(path, doomed);
      } catch (error) {
        // Another cleaner took it first.
        if (codeOf(error) === "ENOENT") continue;
        options.onWarning?.(`cannot remove trash: ${(error as Error).message}`, path);
        continue;
      }
    }
    try {
      await removeTree(doomed);
      paths.push(path);
    } catch (error) {
      options.onWarning?.(`cannot remove trash: ${(error as Error).message}`, doomed);
    }
  }
  return { paths };
}
