import type { Dirent } from "node:fs";
import { lstat, mkdir, readdir, readFile, rename, rm, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { codeOf, messageOf } from "./errors.js";
import {
  isFanOutName,
  isValidFingerprint,
  type Layout,
  STAGE_COMPLETE_SENTINEL,
  trashCreatedAt,
} from "./layout.js";

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
  /** Last use: the slot directory's mtime, which every hit touches. */
  mtimeMs: number;
}

/**
 * Trash younger than this may still be restored by the evictor that made it (see {@link Evictor}), so
 * debris sweeping leaves it alone; anything older is abandoned and removed.
 */
export const TRASH_GRACE_MS = 60_000;

/**
 * Lists the complete entries under a root (slots holding the sentinel). Incomplete or foreign directories
 * are not entries and are never reported. `sizes` memoizes entry sizes by slot path across calls; the
 * sentinel's presence is still checked on every call.
 */
export async function listEntries(layout: Layout, sizes = new Map<string, number>()): Promise<CacheEntry[]> {
  const fanOuts = await readdirOrEmpty(layout.root);
  const entries: CacheEntry[] = [];
  for (const fanOut of fanOuts) {
    if (!fanOut.isDirectory() || !isFanOutName(fanOut.name)) continue;
    for (const slot of await readdirOrEmpty(join(layout.root, fanOut.name))) {
      const fingerprint = slot.name;
      if (
        !slot.isDirectory() ||
        !isValidFingerprint(fingerprint) ||
        fingerprint.slice(0, 2) !== fanOut.name
      ) {
        continue;
      }
      const path = layout.slotPath(fingerprint);
      const stats = await lstat(path).catch(() => undefined);
      if (!stats?.isDirectory()) continue;
      // Completeness is checked on every pass, memoized size or not: the slot may since have been evicted
      // by another process and replaced by an incomplete directory of the same name.
      const sentinel = join(path, STAGE_COMPLETE_SENTINEL);
      if (!(await lstat(sentinel).catch(() => undefined))?.isFile()) {
        sizes.delete(path);
        continue;
      }
      let bytes = sizes.get(path);
      if (bytes === undefined) {
        bytes = await recordedSize(sentinel);
        if (bytes === undefined) continue;
        sizes.set(path, bytes);
      }
      entries.push({ fingerprint, path, bytes, mtimeMs: stats.mtimeMs });
    }
  }
  return entries;
}

/** The size a sentinel records, or undefined when there is no sentinel (an incomplete entry). */
async function recordedSize(sentinel: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(sentinel, "utf8");
  } catch {
    return undefined;
  }
  try {
    const bytes = (JSON.parse(text) as { bytes?: unknown }).bytes;
    if (typeof bytes === "number" && bytes >= 0) return bytes;
  } catch {
    // A sentinel from another writer, without a recorded size: measure the entry.
  }
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
 * How an entry goes, and why in this order:
 * 1. it is re-statted just before removal and skipped if its mtime changed since the listing (a hit
 *    touched it: Bazel's re-check);
 * 2. the whole slot is renamed into `.trash/` in one step, so it stops looking complete at once; a crash
 *    later leaves trash, never a half-deleted slot that still holds its sentinel;
 * 3. the trash is statted again: if a hit touched the slot between the re-stat and the rename, its mtime
 *    moved and the entry is renamed back (a hit touches before it checks the sentinel, so that caller has
 *    either seen the entry missing and rebuilt, or is covered by the restore);
 * 4. only then are the contents removed.
 *
 * Entries used within `minAgeMs` and incomplete ones are never touched.
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
    const entries = await listEntries(this.#layout, this.#sizes);
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
    await removeAbandonedTrash(this.#layout, this.#options.onWarning);
    return { removed, freedBytes, totalBytes };
  }

  async #evict(entry: CacheEntry): Promise<boolean> {
    const before = await lstat(entry.path).catch(() => undefined);
    if (!before || before.mtimeMs !== entry.mtimeMs) return false;
    const trash = this.#layout.trashPath(entry.fingerprint);
    try {
      await rename(entry.path, trash);
    } catch (error) {
      if (codeOf(error) === "ENOENT") return false;
      throw error;
    }
    this.#sizes.delete(entry.path);
    const after = await lstat(trash).catch(() => undefined);
    if (after && after.mtimeMs !== entry.mtimeMs && (await this.#restore(trash, entry))) return false;
    await rm(trash, { recursive: true, force: true, maxRetries: 3 }).catch((error: unknown) => {
      this.#options.onWarning(`could not remove evicted entry: ${messageOf(error)}`, trash);
    });
    return true;
  }

  /** Puts a just-used entry back. False when its slot was rebuilt meanwhile (the trash copy is redundant). */
  async #restore(trash: string, entry: CacheEntry): Promise<boolean> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await rename(trash, entry.path);
        return true;
      } catch (error) {
        // Another process removed the (then empty) fan-out directory: make it again, once.
        if (codeOf(error) !== "ENOENT") return false;
        await mkdir(this.#layout.fanOutPath(entry.fingerprint), { recursive: true }).catch(() => {});
      }
    }
    return false;
  }
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
