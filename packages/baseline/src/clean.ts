import {
  CLAIM_GRACE_MS,
  type EntryStore,
  messageOf,
  removeTree,
  sweepStaleTemps,
  TRASH_GRACE_MS,
} from "@cas-stage/cas";
import { baselinesDir, stagingDir, trashDir } from "./layout.js";
import { type CacheScan, type DebrisEntry, scanCache } from "./scan.js";
import { ensureTrash, openStore } from "./store.js";

export const DAY_MS = 24 * 60 * 60 * 1000;

export interface CleanOptions {
  /**
   * Debris younger than this may belong to a live build and is kept. Default 24 hours. 0 removes all of
   * it: use 0 only when no other process can be using the cache.
   */
  staleAfterMs?: number | undefined;
  /** Report what would be removed without removing anything. */
  dryRun?: boolean | undefined;
  /** Receives what could not be removed, and repairs made on the way. */
  onWarning?: ((message: string, path: string) => void) | undefined;
}

export interface CleanReport {
  /** The debris removed (in a dry run: that would be), with its size. */
  removed: DebrisEntry[];
  /** Slots whose eviction was interrupted, given back whole (a claim renamed back to the sentinel). */
  repaired: DebrisEntry[];
  /** Bytes of `removed`. */
  freedBytes: number;
  dryRun: boolean;
}

/**
 * Removes the debris of the baseline cache under `cacheRoot`, and nothing else: temp dirs of builds that
 * died, trash of evictions that died (and 0.1.0 trash), directories without a sentinel in a slot's place
 * (0.1.0 slots, foreign writers), each once older than `staleAfterMs`; and gives back whole slots whose
 * evictor died. Complete slots are never touched.
 *
 * Every removal goes through the one-step moves of `EntryStore`: an incomplete slot is moved into the trash
 * before it is deleted (and put back if it turned out complete), trash is renamed to `.deleting` first, so
 * a slow evictor can never restore a half-deleted tree.
 *
 * A missing cache gives an empty report. Throws `RangeError` for a negative `staleAfterMs`, and
 * {@link BaselineError} with the filesystem's code when the cache cannot be read; a piece of debris that
 * cannot be removed only goes to `onWarning`.
 */
export async function cleanBaselines(cacheRoot: string, options: CleanOptions = {}): Promise<CleanReport> {
  const staleAfterMs = nonNegative("staleAfterMs", options.staleAfterMs ?? DAY_MS);
  const store = openStore(cacheRoot, {
    onWarning: options.onWarning,
    claimGraceMs: Math.min(CLAIM_GRACE_MS, staleAfterMs),
  });
  const scan = await scanCache(cacheRoot, store, staleAfterMs);
  return removeDebris(store, cacheRoot, scan, { ...options, staleAfterMs });
}

/** The work of {@link cleanBaselines} on a scan already made (pruning scans once for both jobs). */
export async function removeDebris(
  store: EntryStore,
  cacheRoot: string,
  scan: CacheScan,
  options: CleanOptions & { staleAfterMs: number },
): Promise<CleanReport> {
  const { staleAfterMs } = options;
  const dryRun = options.dryRun ?? false;
  const warn = options.onWarning ?? (() => {});
  const stale = scan.debris.filter((entry) => entry.stale);
  const report: CleanReport = { removed: [], repaired: [], freedBytes: 0, dryRun };
  const removed = (entry: DebrisEntry) => {
    report.removed.push(entry);
    report.freedBytes += entry.bytes;
  };
  if (dryRun) {
    for (const entry of stale) {
      if (entry.kind === "claim") report.repaired.push(entry);
      else removed(entry);
    }
    return report;
  }
  const byPath = new Map(scan.debris.map((entry) => [entry.path, entry]));
  const found = (path: string, kind: DebrisEntry["kind"]): DebrisEntry =>
    byPath.get(path) ?? { kind, path, bytes: 0, ageMs: 0, stale: true };

  // An incomplete slot goes through the trash, which a 0.1.0 cache lacks.
  if (stale.some((entry) => entry.kind === "incomplete")) {
    await ensureTrash(store).catch((error: unknown) =>
      warn(`cannot make the trash directory: ${messageOf(error)}`, store.trashDir),
    );
  }
  // Each kind goes through the code that owns it, which looks again before it removes anything.
  for (const entry of stale) {
    if (entry.kind === "claim" && (await store.repairClaim(entry.path))) report.repaired.push(entry);
    if (entry.kind === "incomplete" && (await store.inspect(entry.path)).state === "incomplete") {
      await store.makeWay(entry.path).then(
        () => removed(entry),
        (error: unknown) => warn(`cannot remove an incomplete slot: ${messageOf(error)}`, entry.path),
      );
    }
    if (entry.kind === "trash" && !entry.path.startsWith(trashDir(cacheRoot))) {
      if (await removeLegacyTrash(entry.path, warn)) removed(entry);
    }
  }
  for (const dir of [stagingDir(cacheRoot), baselinesDir(cacheRoot)]) {
    const paths = await sweepStaleTemps(dir, { olderThanMs: staleAfterMs }).catch((error: unknown) => {
      warn(`cannot remove stale temp dirs: ${messageOf(error)}`, dir);
      return [];
    });
    for (const path of paths) removed(found(path, "temp"));
  }
  const trash = await store.removeAbandonedTrash(Math.min(TRASH_GRACE_MS, staleAfterMs));
  for (const path of trash.paths) removed(found(path, "trash"));
  return report;
}

/**
 * Trash of a 0.1.0 prune (`<commit>.trash.<hex>` beside the slots). Nothing of this version reads it: a
 * 0.1.0 pruner could put it back half deleted, but without a sentinel, and so as an incomplete slot that
 * this version rebuilds. True when it was removed.
 */
async function removeLegacyTrash(
  path: string,
  warn: (message: string, path: string) => void,
): Promise<boolean> {
  try {
    await removeTree(path);
    return true;
  } catch (error) {
    warn(`cannot remove trash: ${messageOf(error)}`, path);
    return false;
  }
}

export function nonNegative(name: string, value: number): number {
  if (!(value >= 0)) throw new RangeError(`${name} must be a number >= 0, got ${value}`);
  return value;
}
