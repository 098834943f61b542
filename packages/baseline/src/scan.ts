import type { Dirent } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { codeOf, type EntryStore, isAbandonedTrash, isStageTempName, TRASH_GRACE_MS } from "@cas-stage/cas";
import { baselinesDir, isLegacyTrashName, isSlotName, stagingDir, trashDir } from "./layout.js";
import { readSlotRecord } from "./slot-record.js";
import { cacheError } from "./store.js";
import { measureTree } from "./tree-size.js";

/** A complete slot of the cache. */
export interface CachedBaseline {
  commit: string;
  /** The slot's path, `<cacheRoot>/baselines/<commit>`. */
  path: string;
  /** Bytes of its files and symlinks, as recorded when it was built. */
  bytes: number;
  files: number;
  /** When a call last returned it (built or hit), ms since the epoch. */
  lastUsedMs: number;
}

/**
 * What else takes space in the cache:
 * - `temp`: the staging dir of a build (in progress, or of a process that died);
 * - `trash`: a slot on its way out (being deleted, or left by an evictor that died; also 0.1.0 trash);
 * - `claim`: a whole slot that an evictor claimed and then died (given back, not deleted, by a clean);
 * - `incomplete`: a directory in a slot's place without a sentinel (a 0.1.0 slot, a foreign writer).
 */
export type DebrisKind = "temp" | "trash" | "claim" | "incomplete";

export interface DebrisEntry {
  kind: DebrisKind;
  path: string;
  bytes: number;
  /** How long ago it was made or last changed. */
  ageMs: number;
  /**
   * Old enough that no live process can own it, so a clean removes it (a claim: gives it back). Younger
   * debris may be a build or an eviction in progress.
   */
  stale: boolean;
}

export interface CacheScan {
  slots: CachedBaseline[];
  debris: DebrisEntry[];
}

/**
 * Lists the complete slots and the debris of the cache of `store` under `cacheRoot`, in one pass. Debris
 * is `stale` when older than `staleAfterMs` (trash and claims: older than their grace periods, when those
 * are shorter), and measured unless `measureDebris` is false. Names that are not the cache's are left out. A missing cache gives empty lists. Throws
 * {@link BaselineError} with the filesystem's code when the cache cannot be read.
 */
export async function scanCache(
  cacheRoot: string,
  store: EntryStore,
  staleAfterMs: number,
  options: { now?: number; measureDebris?: boolean } = {},
): Promise<CacheScan> {
  const now = options.now ?? Date.now();
  const measure = options.measureDebris ?? true;
  const parent = baselinesDir(cacheRoot);
  const scan: CacheScan = { slots: [], debris: [] };
  const names = await listNames(cacheRoot, parent);
  const debris = async (kind: DebrisKind, path: string, ageMs: number, graceMs: number) => {
    const bytes = measure ? (await measureTree(path)).bytes : 0;
    scan.debris.push({ kind, path, bytes, ageMs, stale: ageMs >= graceMs });
  };
  for (const entry of names) {
    const path = join(parent, entry.name);
    if (isSlotName(entry.name)) {
      const found = await store.inspect(path);
      if (found.state === "complete") {
        const record = await readSlotRecord(path);
        const size = record ?? (await measureTree(path));
        scan.slots.push({
          commit: entry.name,
          path,
          bytes: size.bytes,
          files: size.files,
          lastUsedMs: found.lastUsedMs,
        });
      } else if (found.state === "claimed") {
        const record = await readSlotRecord(path);
        const bytes = record?.bytes ?? (await measureTree(path)).bytes;
        const graceMs = Math.min(store.claimGraceMs, staleAfterMs);
        scan.debris.push({ kind: "claim", path, bytes, ageMs: found.ageMs, stale: found.ageMs >= graceMs });
      } else if (found.state === "incomplete") {
        await debris("incomplete", path, await ageOf(path, now, "mtimeMs"), staleAfterMs);
      }
    } else if (isLegacyTrashName(entry.name)) {
      await debris("trash", path, await ageOf(path, now, "ctimeMs"), 0);
    } else if (isStageTempName(entry.name) && entry.isDirectory()) {
      await debris("temp", path, await ageOf(path, now, "mtimeMs"), staleAfterMs);
    }
  }
  for (const entry of await listNames(cacheRoot, stagingDir(cacheRoot))) {
    if (!isStageTempName(entry.name) || !entry.isDirectory()) continue;
    const path = join(stagingDir(cacheRoot), entry.name);
    await debris("temp", path, await ageOf(path, now, "mtimeMs"), staleAfterMs);
  }
  for (const entry of await listNames(cacheRoot, trashDir(cacheRoot))) {
    const path = join(trashDir(cacheRoot), entry.name);
    // A rename sets the ctime: the moment the slot went to the trash. Whether a clean removes it is cas's
    // rule, by the time in the trash name, so that a dry run predicts exactly what a clean then does.
    const stale = isAbandonedTrash(entry.name, Math.min(TRASH_GRACE_MS, staleAfterMs), now);
    const bytes = measure ? (await measureTree(path)).bytes : 0;
    scan.debris.push({ kind: "trash", path, bytes, ageMs: await ageOf(path, now, "ctimeMs"), stale });
  }
  return scan;
}

async function listNames(cacheRoot: string, dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (codeOf(error) === "ENOENT") return [];
    throw cacheError(cacheRoot, error);
  }
}

/** Milliseconds since `path`'s mtime or ctime; 0 when it vanished. */
async function ageOf(path: string, now: number, time: "mtimeMs" | "ctimeMs"): Promise<number> {
  const stats = await lstat(path).catch(() => undefined);
  return stats ? Math.max(0, now - stats[time]) : 0;
}
