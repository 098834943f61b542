import { readdir } from "node:fs/promises";
import {
  CLAIM_GRACE_MS,
  codeOf,
  type EntryStore,
  type EvictionCandidate,
  evictLeastRecentlyUsed,
} from "@cas-stage/cas";
import { type CleanReport, DAY_MS, nonNegative, removeDebris } from "./clean.js";
import { BaselineError } from "./errors.js";
import { baselinesDir, isSlotName, slotPath } from "./layout.js";
import { type CachedBaseline, type DebrisEntry, scanCache } from "./scan.js";
import { readSlotRecord } from "./slot-record.js";
import { cacheError, ensureTrash, openStore } from "./store.js";
import { measureTree } from "./tree-size.js";

const MINUTE_MS = 60 * 1000;
/** The default `minAgeMs`: a run that got a slot has this long to read it before pruning may take it. */
export const DEFAULT_MIN_AGE_MS = 10 * MINUTE_MS;

export interface PruneOptions {
  /** Remove every slot not used (built or hit) for at least this long. */
  olderThanMs?: number | undefined;
  /** Then remove least recently used slots while the slots total more than this many bytes. */
  maxBytes?: number | undefined;
  /**
   * Never remove a slot used more recently than this, whatever the limits say: a run that got a slot can
   * read it for at least this long. Default 10 minutes, or `olderThanMs` when that is shorter.
   */
  minAgeMs?: number | undefined;
  /** Debris younger than this is kept (see {@link cleanBaselines}). Default 24 hours. */
  staleAfterMs?: number | undefined;
  /** Report what would be removed without removing anything. */
  dryRun?: boolean | undefined;
  /** Receives debris that could not be removed and repairs made on the way. */
  onWarning?: ((message: string, path: string) => void) | undefined;
}

export interface PruneReport {
  /** The slots removed (in a dry run: that would be), least recently used first. */
  removed: CachedBaseline[];
  /** Bytes of the removed slots and debris. */
  freedBytes: number;
  /** Bytes of the complete slots that remain. */
  remainingBytes: number;
  /** The debris removed on the way (see {@link cleanBaselines}). */
  debris: DebrisEntry[];
  /** Slots whose eviction was interrupted, given back whole. */
  repaired: DebrisEntry[];
  dryRun: boolean;
}

/**
 * Removes baseline slots under `<cacheRoot>/baselines`: every slot not used (built or hit) for
 * `olderThanMs`, then least recently used slots while the rest total more than `maxBytes`, never one used
 * within `minAgeMs`; and the debris of interrupted runs older than `staleAfterMs` ({@link cleanBaselines}).
 * With neither limit it only removes debris and measures.
 *
 * Each slot goes through `EntryStore.evict`: its sentinel is claimed (every later hit misses), it is
 * checked untouched, moved to the trash in one rename, checked once more and only then deleted. So a slot
 * a concurrent call is returning stays whole, a prune killed at any step leaves trash or a whole claimed
 * slot (never a half-deleted tree under the slot's name), and no prune deletes trash that another prune can
 * still put back.
 *
 * A missing cache gives an empty report. Throws `RangeError` for a negative option, and
 * {@link BaselineError} with the filesystem's code when the cache cannot be read or a slot cannot be moved.
 */
export async function pruneBaselines(cacheRoot: string, options: PruneOptions = {}): Promise<PruneReport> {
  const staleAfterMs = nonNegative("pruneBaselines: staleAfterMs", options.staleAfterMs ?? DAY_MS);
  const store = openStore(cacheRoot, {
    onWarning: options.onWarning,
    claimGraceMs: Math.min(CLAIM_GRACE_MS, staleAfterMs),
  });
  return pruneWith(store, cacheRoot, options);
}

/** @internal {@link pruneBaselines} with a given store (tests pass one with hooks). */
export async function pruneWith(
  store: EntryStore,
  cacheRoot: string,
  options: PruneOptions,
): Promise<PruneReport> {
  const { olderThanMs, maxBytes } = options;
  if (olderThanMs !== undefined) nonNegative("pruneBaselines: olderThanMs", olderThanMs);
  if (maxBytes !== undefined) nonNegative("pruneBaselines: maxBytes", maxBytes);
  const minAgeMs = nonNegative(
    "pruneBaselines: minAgeMs",
    options.minAgeMs ?? Math.min(DEFAULT_MIN_AGE_MS, olderThanMs ?? DEFAULT_MIN_AGE_MS),
  );
  const staleAfterMs = nonNegative("pruneBaselines: staleAfterMs", options.staleAfterMs ?? DAY_MS);
  const dryRun = options.dryRun ?? false;

  const now = Date.now();
  const scan = await scanCache(cacheRoot, store, staleAfterMs, { now });
  const cleaned: CleanReport = await removeDebris(store, cacheRoot, scan, { ...options, staleAfterMs });
  const candidates = new Map<string, CachedBaseline>(scan.slots.map((slot) => [slot.path, slot]));
  const evictable: EvictionCandidate[] = scan.slots.map((slot) => ({
    slot: slot.path,
    bytes: slot.bytes,
    lastUsedMs: slot.lastUsedMs,
  }));
  let eviction: Awaited<ReturnType<typeof evictLeastRecentlyUsed>>;
  try {
    eviction = await evictLeastRecentlyUsed(
      store,
      evictable,
      { olderThanMs, maxBytes, minAgeMs, dryRun },
      now,
    );
  } catch (error) {
    throw cacheError(cacheRoot, error);
  }
  const removed = eviction.removed.map((entry) => candidates.get(entry.slot) as CachedBaseline);
  return {
    removed,
    freedBytes: eviction.freedBytes + cleaned.freedBytes,
    remainingBytes: eviction.remainingBytes,
    debris: cleaned.removed,
    repaired: cleaned.repaired,
    dryRun,
  };
}

export interface RemoveOptions {
  /** Remove the slot even if it was used within `minAgeMs` (a run may be reading it). */
  force?: boolean | undefined;
  /** A slot used more recently than this is kept unless `force`. Default 10 minutes. */
  minAgeMs?: number | undefined;
  onWarning?: ((message: string, path: string) => void) | undefined;
}

/**
 * Removes the cached slot of `commit` (a full SHA, or a prefix of at least 4 hex digits naming one slot)
 * through the eviction path of {@link pruneBaselines}: the slot is claimed, moved to the trash in one rename
 * and deleted there, so no reader ever sees it half-deleted. A slot used within `minAgeMs` is kept unless
 * `force` (a run may be reading it); with `force` it goes even if used just now. A directory without a
 * sentinel in the slot's place (debris) is removed too. Resolves with what was removed.
 *
 * Throws {@link BaselineError}: `EINVAL` for a malformed commit, `ENOENT` when no slot is cached for it (or
 * another process is removing it), `EAMBIGUOUS` for a prefix naming several slots, `EBUSY` for a slot used
 * within `minAgeMs` (or used while being removed), and the filesystem's code when it cannot be moved.
 */
export async function removeBaseline(
  cacheRoot: string,
  commit: string,
  options: RemoveOptions = {},
): Promise<CachedBaseline> {
  const store = openStore(cacheRoot, { onWarning: options.onWarning, claimGraceMs: CLAIM_GRACE_MS });
  return removeWith(store, cacheRoot, commit, options);
}

/** @internal {@link removeBaseline} with a given store (tests pass one with hooks). */
export async function removeWith(
  store: EntryStore,
  cacheRoot: string,
  commit: string,
  options: RemoveOptions,
): Promise<CachedBaseline> {
  const minAgeMs = nonNegative("removeBaseline: minAgeMs", options.minAgeMs ?? DEFAULT_MIN_AGE_MS);
  const slot = slotPath(cacheRoot, await findSlotName(cacheRoot, commit));
  const name = slot.slice(baselinesDir(cacheRoot).length + 1);
  try {
    await store.repairClaim(slot);
    const found = await store.inspect(slot);
    if (found.state === "incomplete") {
      const size = await measureTree(slot);
      await ensureTrash(store);
      await store.makeWay(slot);
      return { commit: name, path: slot, ...size, lastUsedMs: 0 };
    }
    if (found.state !== "complete") {
      throw new BaselineError(
        "ENOENT",
        found.state === "claimed"
          ? `the baseline ${name} is being removed by another process`
          : `no baseline of ${name} is cached in ${cacheRoot}`,
        { path: slot },
      );
    }
    const record = await readSlotRecord(slot);
    const size = record ?? (await measureTree(slot));
    const entry = {
      commit: name,
      path: slot,
      bytes: size.bytes,
      files: size.files,
      lastUsedMs: found.lastUsedMs,
    };
    const force = options.force ?? false;
    if (!force && Date.now() - found.lastUsedMs < minAgeMs) throw busy(entry, minAgeMs);
    await ensureTrash(store);
    if (await store.evict(slot, found.lastUsedMs, { force })) return entry;
    if (force)
      throw new BaselineError("ENOENT", `the baseline ${name} was removed by another process`, {
        path: slot,
      });
    throw busy(entry, minAgeMs);
  } catch (error) {
    throw cacheError(cacheRoot, error);
  }
}

function busy(entry: CachedBaseline, minAgeMs: number): BaselineError {
  return new BaselineError(
    "EBUSY",
    `the baseline ${entry.commit} was used ${Math.round((Date.now() - entry.lastUsedMs) / 1000)} s ago, within the minimum age of ${Math.round(minAgeMs / 1000)} s, and a run may be reading it; pass force to remove it anyway`,
    { path: entry.path },
  );
}

/** The slot name `commit` (a full SHA or a unique prefix) names. */
async function findSlotName(cacheRoot: string, commit: string): Promise<string> {
  const wanted = commit.toLowerCase();
  if (!/^[0-9a-f]{4,64}$/.test(wanted)) {
    throw new BaselineError(
      "EINVAL",
      `"${commit}" is not a commit id; pass a full SHA or at least 4 hex digits`,
    );
  }
  if (isSlotName(wanted)) return wanted;
  let names: string[];
  try {
    names = await readdir(baselinesDir(cacheRoot));
  } catch (error) {
    if (codeOf(error) !== "ENOENT") throw cacheError(cacheRoot, error);
    names = [];
  }
  const matches = names.filter((name) => isSlotName(name) && name.startsWith(wanted));
  if (matches.length === 1) return matches[0] as string;
  if (matches.length === 0) {
    throw new BaselineError(
      "ENOENT",
      `no baseline of a commit starting with ${wanted} is cached in ${cacheRoot}`,
      {
        path: baselinesDir(cacheRoot),
      },
    );
  }
  throw new BaselineError(
    "EAMBIGUOUS",
    `${wanted} names ${matches.length} cached baselines (${matches.slice(0, 3).join(", ")}${matches.length > 3 ? ", …" : ""}); pass more digits`,
    { path: baselinesDir(cacheRoot) },
  );
}
