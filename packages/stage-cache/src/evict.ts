import { type Dirent, readdirSync } from "node:fs";
import { lstat, readdir, rmdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { codeOf, type EntryStore, evictLeastRecentlyUsed, messageOf } from "@cas-stage/cas";
import { type Layout, parseSlotName, STAGE_COMPLETE_SENTINEL } from "./layout.js";
import { readSentinelHeader } from "./sentinel.js";

/** What one eviction pass did (or, in a dry run, would do). */
export interface SweepResult {
  /** Slot paths removed, least recently used first. */
  removed: string[];
  /** Bytes of file content those slots held. */
  freedBytes: number;
  /** Bytes of file content in the complete entries that remain. */
  totalBytes: number;
  /**
   * True when the cache has no size cap (`maxBytes` 0 or absent): such a pass removes nothing and only
   * measures. A cap of 0 means "no cap", as it does for `StageCache.open`, never "remove everything".
   */
  measuredOnly: boolean;
}

/** A slot directory under a root, complete or not. */
export interface SlotOnDisk {
  fingerprint: string;
  path: string;
  /** Named by an older version of this package (see `parseSlotName`). */
  legacy: boolean;
}

/** A complete entry of the cache. */
export interface CacheEntry {
  fingerprint: string;
  path: string;
  /** Bytes of file content (recorded in the sentinel when the entry was built). */
  bytes: number;
  /** Last use: the sentinel's mtime, which every hit touches. */
  lastUsedMs: number;
}

/**
 * Every slot directory under a root: directories named as `layout.ts` names slots, inside the fan-out
 * directory their name belongs in. Anything else (private directories, foreign names, files) is skipped.
 * Throws the filesystem error when the root cannot be listed; a fan-out that vanishes meanwhile is skipped.
 * Synchronous: one `readdir` per fan-out, each far cheaper than a round trip to the thread pool.
 */
export function listSlots(layout: Layout): SlotOnDisk[] {
  const slots: SlotOnDisk[] = [];
  for (const fanOut of readdirOrEmptySync(layout.root)) {
    if (!fanOut.isDirectory()) continue;
    for (const slot of readdirOrEmptySync(join(layout.root, fanOut.name))) {
      const parsed = slot.isDirectory() ? parseSlotName(fanOut.name, slot.name) : undefined;
      if (parsed) slots.push({ ...parsed, path: join(layout.root, fanOut.name, slot.name) });
    }
  }
  return slots;
}

/**
 * Lists the complete entries under a root (slots holding the sentinel). Other slots (incomplete, or claimed
 * by an evictor) are not entries and go to `others` when it is given. `sizes` memoizes entry sizes by slot
 * path across calls; the sentinel's presence is still checked on every call, since the entry may have been
 * evicted by another process and its slot taken by something else meanwhile.
 */
export async function listEntries(
  layout: Layout,
  sizes = new Map<string, number>(),
  others?: SlotOnDisk[],
): Promise<CacheEntry[]> {
  const entries: CacheEntry[] = [];
  for (const slot of listSlots(layout)) {
    const stats = await lstat(join(slot.path, STAGE_COMPLETE_SENTINEL)).catch(() => undefined);
    let bytes = stats?.isFile() ? sizes.get(slot.path) : undefined;
    if (stats?.isFile() && bytes === undefined) {
      bytes = await entrySize(slot.path);
      if (bytes !== undefined) sizes.set(slot.path, bytes);
    }
    if (!stats?.isFile() || bytes === undefined) {
      sizes.delete(slot.path);
      others?.push(slot);
      continue;
    }
    entries.push({ fingerprint: slot.fingerprint, path: slot.path, bytes, lastUsedMs: stats.mtimeMs });
  }
  return entries;
}

/**
 * The bytes of file content of the entry at `slot`, as its sentinel's header records them (or measured, for a
 * sentinel of another writer without a size); undefined when there is no sentinel to read. Reads at most the
 * sentinel's first few KiB, not its manifest.
 */
export async function entrySize(slot: string): Promise<number | undefined> {
  let header: Record<string, unknown> | null;
  try {
    header = await readSentinelHeader(join(slot, STAGE_COMPLETE_SENTINEL));
  } catch {
    return undefined;
  }
  const bytes = header?.bytes;
  if (typeof bytes === "number" && bytes >= 0) return bytes;
  // A sentinel from another writer, without a recorded size: measure the entry.
  return (await measureTree(slot)).bytes;
}

/**
 * The bytes of file content under `dir` and the newest mtime of anything in it (`dir` included). Entries
 * that vanish meanwhile count as nothing; never throws for a missing `dir` (0 bytes, mtime 0).
 */
export async function measureTree(dir: string): Promise<{ bytes: number; newestMtimeMs: number }> {
  const own = await lstat(dir).catch(() => undefined);
  let bytes = 0;
  let newestMtimeMs = own?.mtimeMs ?? 0;
  if (!own?.isDirectory()) return { bytes: own?.isFile() ? own.size : 0, newestMtimeMs };
  for (const entry of await readdirOrEmpty(dir)) {
    const inner = await measureTree(join(dir, entry.name));
    bytes += inner.bytes;
    newestMtimeMs = Math.max(newestMtimeMs, inner.newestMtimeMs);
  }
  return { bytes, newestMtimeMs };
}

export interface EvictorOptions {
  maxBytes: number;
  minAgeMs: number;
  onWarning: (message: string, path: string) => void;
  /** Test seam: awaited after a pass listed the entries, before it removes any. */
  afterList?: ((entries: readonly CacheEntry[]) => unknown) | undefined;
}

/**
 * Size-capped least-recently-used eviction for one cache root, through `EntryStore` (whose `evict` says how
 * an entry goes without ever disappearing under a caller that used it within `minAgeMs`) and cas's
 * `evictLeastRecentlyUsed` (which entries go: least recently used first while the total exceeds `maxBytes`,
 * never one used within `minAgeMs`). This module adds the listing of a root's slots, the memoized entry
 * sizes, one pass at a time per process, and removing the fan-out directories that passes empty.
 */
export class Evictor {
  readonly #layout: Layout;
  readonly #store: EntryStore;
  readonly #options: EvictorOptions;
  readonly #sizes = new Map<string, number>();
  #running: Promise<unknown> | undefined;
  #passRequested = false;

  constructor(layout: Layout, store: EntryStore, options: EvictorOptions) {
    this.#layout = layout;
    this.#store = store;
    this.#options = options;
  }

  /**
   * Starts a background pass unless one is running (then one more runs after it). Does nothing without a
   * cap. Never rejects: a failed pass goes to `onWarning`.
   */
  schedule(): void {
    if (!(this.#options.maxBytes > 0)) return;
    if (this.#running) {
      this.#passRequested = true;
      return;
    }
    const run = async (): Promise<void> => {
      do {
        this.#passRequested = false;
        try {
          await this.#pass(false);
        } catch (error) {
          this.#options.onWarning(`eviction failed: ${messageOf(error)}`, this.#layout.root);
        }
      } while (this.#passRequested);
    };
    const running = run().finally(() => {
      if (this.#running === running) this.#running = undefined;
    });
    this.#running = running;
  }

  /** Runs one pass now, after any pass in flight; passes never overlap within one process. */
  async sweep(dryRun: boolean): Promise<SweepResult> {
    const previous = this.#running;
    const pass = (async () => {
      await previous?.catch(() => {});
      return this.#pass(dryRun);
    })();
    const running = pass.catch(() => {});
    this.#running = running;
    void running.finally(() => {
      if (this.#running === running) this.#running = undefined;
      // A pass asked for (schedule) while this sweep ran: only a background loop reads the request, and
      // none may be running, so start it here (if another pass runs now, it takes the request over).
      if (this.#passRequested) {
        this.#passRequested = false;
        this.schedule();
      }
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

  async #pass(dryRun: boolean): Promise<SweepResult> {
    const { maxBytes, minAgeMs } = this.#options;
    const others: SlotOnDisk[] = [];
    const entries = await listEntries(this.#layout, this.#sizes, others);
    await this.#options.afterList?.(entries);
    const report = await evictLeastRecentlyUsed(
      this.#store,
      entries.map((entry) => ({ slot: entry.path, bytes: entry.bytes, lastUsedMs: entry.lastUsedMs })),
      { maxBytes, minAgeMs, dryRun },
    );
    if (!dryRun) {
      for (const { slot } of report.removed) {
        this.#sizes.delete(slot);
        // rmdir removes only an empty directory, so a slot renamed in meanwhile is never lost.
        await rmdir(dirname(slot)).catch(() => {});
      }
      // Debris a pass can see at no extra cost: entries whose evictor died (claims past their grace period,
      // given back whole) and trash no evictor can restore any more.
      for (const slot of others) await this.#store.repairClaim(slot.path);
      await this.#store.removeAbandonedTrash();
    }
    return {
      removed: report.removed.map((entry) => entry.slot),
      freedBytes: report.freedBytes,
      totalBytes: report.remainingBytes,
      measuredOnly: !(maxBytes > 0),
    };
  }
}

/** The entries of a directory; none when it does not exist (or is not a directory). */
export async function readdirOrEmpty(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (codeOf(error) === "ENOENT" || codeOf(error) === "ENOTDIR") return [];
    throw error;
  }
}

/** {@link readdirOrEmpty}, synchronously: for directories that hold few entries, or that must be quick. */
export function readdirOrEmptySync(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if (codeOf(error) === "ENOENT" || codeOf(error) === "ENOTDIR") return [];
    throw error;
  }
}
