import type { Dirent } from "node:fs";
import { lstat, mkdir, readdir, rename, rm, rmdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { codeOf, messageOf } from "./errors.js";
import {
  EVICTION_CLAIM,
  isFanOutName,
  isValidFingerprint,
  type Layout,
  STAGE_COMPLETE_SENTINEL,
  trashCreatedAt,
} from "./layout.js";
import { readSentinelHeader } from "./sentinel.js";

/** What one eviction pass did. */
export interface SweepResult {
  /** Slot paths removed, oldest first. */
  removed: string[];
  /** Bytes of file content those slots held. */
  freedBytes: number;
  /** Bytes of file content in the complete entries that remain. */
  totalBytes: number;
}

/** A complete entry of the cache, as listed by {@link listEntries}. */
export interface CacheEntry {
  fingerprint: string;
  path: string;
  /** Bytes of file content (recorded in the sentinel when the entry was built). */
  bytes: number;
  /** Last use: the sentinel's mtime, which every hit touches. */
  mtimeMs: number;
}

/**
 * Trash younger than this may still be restored by the evictor that made it (see {@link Evictor}), so
 * debris sweeping leaves it alone; anything older is abandoned and removed.
 */
export const TRASH_GRACE_MS = 60_000;

/**
 * An evictor holds its claim on an entry for microseconds (see {@link Evictor}); a claim older than this
 * belongs to an evictor that died, and its entry is debris.
 */
export const CLAIM_GRACE_MS = 2_000;

/** The fingerprints of the slot directories under a root (valid names in their own fan-out directory). */
async function slotFingerprints(layout: Layout): Promise<string[]> {
  const fingerprints: string[] = [];
  for (const fanOut of await readdirOrEmpty(layout.root)) {
    if (!fanOut.isDirectory() || !isFanOutName(fanOut.name)) continue;
    for (const slot of await readdirOrEmpty(join(layout.root, fanOut.name))) {
      const fingerprint = slot.name;
      if (slot.isDirectory() && isValidFingerprint(fingerprint) && fingerprint.slice(0, 2) === fanOut.name) {
        fingerprints.push(fingerprint);
      }
    }
  }
  return fingerprints;
}

/**
 * Lists the complete entries under a root (slots holding the sentinel). Incomplete or foreign directories
 * are not entries and are never reported; their fingerprints go to `incomplete` when it is given. `sizes`
 * memoizes entry sizes by slot path across calls; the sentinel's presence is still checked on every call.
 */
export async function listEntries(
  layout: Layout,
  sizes = new Map<string, number>(),
  incomplete?: string[],
): Promise<CacheEntry[]> {
  const entries: CacheEntry[] = [];
  for (const fingerprint of await slotFingerprints(layout)) {
    const path = layout.slotPath(fingerprint);
    // The sentinel says both that the entry is complete and when it was last used. It is read on every
    // pass, memoized size or not: the entry may since have been evicted by another process and replaced
    // by an incomplete directory of the same name.
    const sentinel = join(path, STAGE_COMPLETE_SENTINEL);
    const stats = await lstat(sentinel).catch(() => undefined);
    let bytes = stats?.isFile() ? sizes.get(path) : undefined;
    if (stats?.isFile() && bytes === undefined) {
      bytes = await recordedSize(sentinel);
      if (bytes !== undefined) sizes.set(path, bytes);
    }
    if (!stats || bytes === undefined) {
      sizes.delete(path);
      incomplete?.push(fingerprint);
      continue;
    }
    entries.push({ fingerprint, path, bytes, mtimeMs: stats.mtimeMs });
  }
  return entries;
}

/** The size a sentinel records, or undefined when there is no sentinel (an incomplete entry). */
async function recordedSize(sentinel: string): Promise<number | undefined> {
  let header: Record<string, unknown> | null;
  try {
    header = await readSentinelHeader(sentinel);
  } catch {
    return undefined;
  }
  const bytes = header?.bytes;
  if (typeof bytes === "number" && bytes >= 0) return bytes;
  // A sentinel from another writer, without a recorded size: measure the entry.
  return measure(sentinel.slice(0, -STAGE_COMPLETE_SENTINEL.length - 1));
}

async function measure(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdirOrEmpty(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await measure(path);
    else if (entry.isFile()) total += (await lstat(path).catch(() => undefined))?.size ?? 0;
  }
  return total;
}

export interface EvictorOptions {
  maxBytes: number;
  minAgeMs: number;
  onWarning: (message: string, path: string) => void;
}

/**
 * Size-capped least-recently-used eviction for one cache root.
 *
 * An entry's last use is its sentinel's mtime: a hit touches the sentinel (`utimes`), and a failed touch
 * (no sentinel) is a miss. How an entry goes, and why in this order:
 * 1. its sentinel is re-statted and the entry skipped if the mtime changed since the listing (a hit touched
 *    it: Bazel's re-check);
 * 2. the sentinel is renamed to {@link EVICTION_CLAIM}: from this instant every new hit fails its touch and
 *    rebuilds, yet every file stays where it was, so a caller that already holds the path reads on;
 * 3. the claim is statted: a rename keeps a file's mtime, so if it moved, a hit touched the sentinel between
 *    steps 1 and 2 and has returned the path; the claim is renamed back and the entry kept;
 * 4. only then is the whole slot renamed into `.trash/` (one step: a crash leaves trash or a claimed slot,
 *    never a half-deleted slot with its sentinel) and removed.
 *
 * So no path that a hit returned disappears, not even for an instant, unless it went unused for `minAgeMs`.
 * Entries used within `minAgeMs` and incomplete ones are never touched; claims older than
 * {@link CLAIM_GRACE_MS} (an evictor that died between steps 2 and 4) are removed as debris.
 */
export class Evictor {
  readonly #layout: Layout;
  readonly #options: EvictorOptions;
  readonly #sizes = new Map<string, number>();
  #running: Promise<unknown> | undefined;
  #again = false;

  constructor(layout: Layout, options: EvictorOptions) {
    this.#layout = layout;
    this.#options = options;
  }

  /** Starts a background pass unless one is running (then one more runs after it). Never rejects. */
  schedule(): void {
    if (!(this.#options.maxBytes > 0)) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    const run = async (): Promise<void> => {
      do {
        this.#again = false;
        try {
          await this.#pass();
        } catch (error) {
          this.#options.onWarning(`eviction failed: ${messageOf(error)}`, this.#layout.root);
        }
      } while (this.#again);
    };
    const running = run().finally(() => {
      if (this.#running === running) this.#running = undefined;
    });
    this.#running = running;
  }

  /** Runs one pass now, after any pass in flight; passes never overlap within one process. */
  async sweep(): Promise<SweepResult> {
    const previous = this.#running;
    const pass = (async () => {
      await previous?.catch(() => {});
      return this.#pass();
    })();
    const running = pass.catch(() => {});
    this.#running = running;
    void running.finally(() => {
      if (this.#running === running) this.#running = undefined;
    });
    return pass;
  }

  /** Resolves once no pass is running. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running.catch(() => {});
  }

  /** Forgets the memoized size of a slot that was rebuilt or removed by someone else. */
  forget(slot: string): void {
    this.#sizes.delete(slot);
  }

  async #pass(): Promise<SweepResult> {
    const { maxBytes, minAgeMs } = this.#options;
    const incomplete: string[] = [];
    const entries = await listEntries(this.#layout, this.#sizes, incomplete);
    let totalBytes = entries.reduce((sum, entry) => sum + entry.bytes, 0);
    const removed: string[] = [];
    let freedBytes = 0;
    if (maxBytes > 0 && totalBytes > maxBytes) {
      entries.sort((a, b) => a.mtimeMs - b.mtimeMs);
      const touchedFanOuts = new Set<string>();
      for (const entry of entries) {
        if (totalBytes <= maxBytes) break;
        if (Date.now() - entry.mtimeMs < minAgeMs) break;
        if (!(await this.#evict(entry))) continue;
        totalBytes -= entry.bytes;
        freedBytes += entry.bytes;
        removed.push(entry.path);
        touchedFanOuts.add(this.#layout.fanOutPath(entry.fingerprint));
      }
      for (const fanOut of touchedFanOuts) {
        // rmdir removes only an empty directory, so a slot renamed in meanwhile is never lost.
        await rmdir(fanOut).catch(() => {});
      }
    }
    for (const fingerprint of incomplete) {
      await removeIfAbandonedClaim(this.#layout, fingerprint, CLAIM_GRACE_MS, this.#options.onWarning);
    }
    await removeAbandonedTrash(this.#layout, this.#options.onWarning);
    return { removed, freedBytes, totalBytes };
  }

  async #evict(entry: CacheEntry): Promise<boolean> {
    const sentinel = join(entry.path, STAGE_COMPLETE_SENTINEL);
    const claim = join(entry.path, EVICTION_CLAIM);
    const before = await lstat(sentinel).catch(() => undefined);
    if (!before || before.mtimeMs !== entry.mtimeMs) return false;
    try {
      await rename(sentinel, claim);
    } catch (error) {
      if (codeOf(error) === "ENOENT") return false;
      throw error;
    }
    const claimed = await lstat(claim).catch(() => undefined);
    if (!claimed) return false; // moved away meanwhile by another process's debris handling
    if (claimed.mtimeMs !== entry.mtimeMs) {
      // Touched between the re-stat and the claim: that caller holds the path, so the entry stays.
      await rename(claim, sentinel).catch(() => {});
      return false;
    }
    const trash = this.#layout.trashPath(entry.fingerprint);
    try {
      await rename(entry.path, trash);
    } catch (error) {
      if (codeOf(error) === "ENOENT") return false;
      throw error;
    }
    // A touch is one syscall that finds the file, then sets its times: one that found the sentinel just
    // before the claim may land just after the check above. Look once more before the contents go.
    const late = await lstat(join(trash, EVICTION_CLAIM)).catch(() => undefined);
    if (late && late.mtimeMs !== entry.mtimeMs && (await putBack(trash, entry.path))) return false;
    this.#sizes.delete(entry.path);
    await rm(trash, { recursive: true, force: true, maxRetries: 3 }).catch((error: unknown) => {
      this.#options.onWarning(`could not remove evicted entry: ${messageOf(error)}`, trash);
    });
    return true;
  }
}

/**
 * Removes entries whose eviction was interrupted: slots holding an {@link EVICTION_CLAIM} older than
 * `graceMs` and no sentinel. Each goes to trash in one rename first, so a crash here leaves trash.
 */
export async function removeAbandonedClaims(
  layout: Layout,
  onWarning: (message: string, path: string) => void,
  graceMs = CLAIM_GRACE_MS,
): Promise<void> {
  for (const fingerprint of await slotFingerprints(layout)) {
    await removeIfAbandonedClaim(layout, fingerprint, graceMs, onWarning);
  }
}

/**
 * Removes one slot if it holds a claim left by an evictor that died: no sentinel, and a claim made
 * (renamed, which sets its ctime) at least `graceMs` ago. A younger claim is an eviction in progress.
 */
async function removeIfAbandonedClaim(
  layout: Layout,
  fingerprint: string,
  graceMs: number,
  onWarning: (message: string, path: string) => void,
): Promise<void> {
  const age = await claimAgeMs(layout, fingerprint);
  if (age === undefined || age < graceMs) return;
  if (
    await lstat(layout.sentinelPath(fingerprint)).then(
      () => true,
      () => false,
    )
  )
    return;
  const trash = layout.trashPath(fingerprint);
  if (
    !(await rename(layout.slotPath(fingerprint), trash).then(
      () => true,
      () => false,
    ))
  )
    return;
  await rm(trash, { recursive: true, force: true, maxRetries: 3 }).catch((error: unknown) => {
    onWarning(`could not remove an interrupted eviction: ${messageOf(error)}`, trash);
  });
}

/** How long ago the slot was claimed by an evictor (its claim's ctime), or undefined when it is not. */
async function claimAgeMs(layout: Layout, fingerprint: string): Promise<number | undefined> {
  const claim = await lstat(layout.claimPath(fingerprint)).catch(() => undefined);
  return claim && Date.now() - claim.ctimeMs;
}

/** Renames an evicted slot back from trash and un-claims it; false when the slot was rebuilt meanwhile. */
async function putBack(trash: string, slot: string): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rename(trash, slot);
      break;
    } catch (error) {
      // Another process removed the (then empty) fan-out directory: make it again, once.
      if (attempt > 0 || codeOf(error) !== "ENOENT") return false;
      await mkdir(dirname(slot), { recursive: true }).catch(() => {});
    }
  }
  await rename(join(slot, EVICTION_CLAIM), join(slot, STAGE_COMPLETE_SENTINEL)).catch(() => {});
  return true;
}

/** Whether the slot is claimed by an eviction still in progress (a claim younger than `CLAIM_GRACE_MS`). */
export async function isBeingEvicted(layout: Layout, fingerprint: string): Promise<boolean> {
  const age = await claimAgeMs(layout, fingerprint);
  return age !== undefined && age < CLAIM_GRACE_MS;
}

/**
 * Removes trash that no evictor can still restore: older than `graceMs` (default {@link TRASH_GRACE_MS}),
 * or not ours. A shorter grace is for callers that know no evictor is running (`staleAfterMs: 0`).
 */
export async function removeAbandonedTrash(
  layout: Layout,
  onWarning: (message: string, path: string) => void,
  graceMs = TRASH_GRACE_MS,
): Promise<void> {
  const cutoff = Date.now() - graceMs;
  for (const entry of await readdirOrEmpty(layout.trashDir)) {
    const createdAt = trashCreatedAt(entry.name);
    if (createdAt !== undefined && createdAt > cutoff) continue;
    const path = join(layout.trashDir, entry.name);
    await rm(path, { recursive: true, force: true, maxRetries: 3 }).catch((error: unknown) => {
      onWarning(`could not remove trash: ${messageOf(error)}`, path);
    });
  }
}

async function readdirOrEmpty(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (codeOf(error) === "ENOENT" || codeOf(error) === "ENOTDIR") return [];
    throw error;
  }
}
