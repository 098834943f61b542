import { access, lstat, mkdir, mkdtemp, readdir, rename, rm, utimes, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { stage as casStage, defaultCacheDir, StageError, sweepStaleTemps } from "@cas-stage/cas";
import { copyTree, type StageProgress } from "./copy.js";
import { codeOf, messageOf, StageCacheError } from "./errors.js";
import {
  CLAIM_GRACE_MS,
  Evictor,
  isBeingEvicted,
  removeAbandonedClaims,
  removeAbandonedTrash,
  type SweepResult,
  TRASH_GRACE_MS,
} from "./evict.js";
import { assertFingerprint, EVICTION_CLAIM, Layout, STAGE_COMPLETE_SENTINEL } from "./layout.js";
import { sentinelText } from "./sentinel.js";
import { sourceRoot, type WalkOptions } from "./walk.js";

export interface StageCacheOptions {
  /** Cache root. Default `defaultCacheDir() + "/stage"` (`$CAS_STAGE_CACHE_DIR/stage` when that is set). */
  root?: string;
  /** Soft cap on the bytes of complete entries; 0 or absent disables size eviction. */
  maxBytes?: number;
  /** Eviction never removes an entry used more recently than this. Default 10 minutes. */
  minAgeMs?: number;
  /**
   * Scratch copies and stage temps older than this are debris that `open()` removes. Default 24 hours.
   * Trash of an interrupted eviction is removed after at most a minute, or after this when shorter: 0 removes
   * all debris at once, for use when no other process can be using the cache.
   */
  staleAfterMs?: number;
  /** Copy files behind symlinks that resolve outside the source root. Default false (skip and warn). */
  followExternalSymlinks?: boolean;
  /** Receives every warning (skipped external symlink, failed background eviction…). Libraries never print. */
  onWarning?: (message: string, path: string) => void;
}

/** Options of one {@link StageCache.stage} call. */
export interface StageCallOptions {
  /** Aborting stops a copy this call started and rejects with `signal.reason`; nothing is left behind. */
  signal?: AbortSignal;
  /**
   * Called after each copied file when this call copies (never on a hit). Called often: keep it cheap.
   * A call that joins a copy already running in this process for the same fingerprint gets no progress.
   */
  onProgress?: (progress: StageProgress) => void;
}

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;
/** Attempts at publishing one slot before giving up (each retry follows a concurrent eviction or debris). */
const MAX_ATTEMPTS = 8;
/** How often a miss that found its slot claimed by an evictor looks again. */
const CLAIM_POLL_MS = 5;
/** A hit touches the entry at most this often per process (see `#touchIntervalMs`). */
const MAX_TOUCH_INTERVAL_MS = 1000;

interface Resolved {
  path: string;
  touchedAt: number;
}

/**
 * A content-addressed cache of directory copies under one root.
 *
 * With a fingerprint, the copy is `<root>/<fp[0:2]>/<fp>/`, shared by every process using the root. It is
 * complete exactly when it holds {@link STAGE_COMPLETE_SENTINEL}. The sentinel is written inside the staging
 * directory as the build's last step, so the rename that publishes the slot publishes the sentinel with it:
 * a slot is never visible without its sentinel while a writer of this package is finishing it. Hence no
 * call ever deletes a slot in place; see {@link StageCache.stage} for what a concurrent reader observes.
 *
 * Without a fingerprint, each source gets a private scratch copy under `<root>/.scratch/`, removed by
 * {@link StageCache.close}.
 */
export class StageCache {
  /** The absolute cache root. */
  readonly root: string;
  readonly #layout: Layout;
  readonly #followExternalSymlinks: boolean;
  readonly #onWarning: (message: string, path: string) => void;
  readonly #evictor: Evictor;
  /**
   * A memoized hit re-touches (and so re-checks) its entry only when the last touch by this process is at
   * least this old. Safe because an entry touched less than `minAgeMs` ago cannot be evicted: skipping a
   * touch for at most `minAgeMs / 2` leaves the entry younger than `minAgeMs` throughout.
   */
  readonly #touchIntervalMs: number;
  readonly #resolved = new Map<string, Resolved>();
  readonly #inflight = new Map<string, Promise<string>>();
  readonly #scratch = new Map<string, Promise<string>>();
  #closed = false;

  private constructor(layout: Layout, options: Required<Omit<StageCacheOptions, "root" | "staleAfterMs">>) {
    this.root = layout.root;
    this.#layout = layout;
    this.#followExternalSymlinks = options.followExternalSymlinks;
    this.#onWarning = options.onWarning;
    this.#touchIntervalMs = Math.min(MAX_TOUCH_INTERVAL_MS, options.minAgeMs / 2);
    this.#evictor = new Evictor(layout, {
      maxBytes: options.maxBytes,
      minAgeMs: options.minAgeMs,
      onWarning: options.onWarning,
    });
  }

  /**
   * Opens (creating if needed) a cache root and removes its debris: stage temps and scratch copies older
   * than `staleAfterMs`, and abandoned eviction trash. Failing to remove debris is only warned about.
   *
   * Throws {@link StageCacheError} with the filesystem's code (`EACCES`, `EROFS`, `ENOTDIR`, …) when the
   * root cannot be created or written, and RangeError for a negative or non-numeric option.
   */
  static async open(options: StageCacheOptions = {}): Promise<StageCache> {
    const root = resolve(options.root ?? join(defaultCacheDir(), "stage"));
    const maxBytes = nonNegative("maxBytes", options.maxBytes ?? 0);
    const minAgeMs = nonNegative("minAgeMs", options.minAgeMs ?? 10 * MINUTE_MS);
    const staleAfterMs = nonNegative("staleAfterMs", options.staleAfterMs ?? DAY_MS);
    const onWarning = options.onWarning ?? (() => {});
    const layout = new Layout(root);
    try {
      for (const dir of [root, layout.stagingDir, layout.scratchDir, layout.trashDir]) {
        await mkdir(dir, { recursive: true });
      }
      // mkdir of existing directories proves nothing about writing: check it.
      await access(root, 2 /* W_OK */);
    } catch (cause) {
      throw rootError(root, cause);
    }
    await sweepStaleTemps(layout.stagingDir, { olderThanMs: staleAfterMs }).catch((error: unknown) => {
      onWarning(`could not remove stale stage temps: ${messageOf(error)}`, layout.stagingDir);
    });
    await removeStaleScratch(layout, staleAfterMs, onWarning);
    await removeAbandonedClaims(layout, onWarning, Math.min(CLAIM_GRACE_MS, staleAfterMs)).catch(
      (error: unknown) => {
        onWarning(`could not remove interrupted evictions: ${messageOf(error)}`, layout.root);
      },
    );
    await removeAbandonedTrash(layout, onWarning, Math.min(TRASH_GRACE_MS, staleAfterMs)).catch(
      (error: unknown) => {
        onWarning(`could not remove trash: ${messageOf(error)}`, layout.trashDir);
      },
    );
    return new StageCache(layout, {
      maxBytes,
      minAgeMs,
      followExternalSymlinks: options.followExternalSymlinks ?? false,
      onWarning,
    });
  }

  /**
   * Returns a directory holding a copy of `source` (see `walkTree` for which files a copy holds).
   *
   * With `fingerprint`, the copy is the shared slot `<root>/<fp[0:2]>/<fp>/`; the caller promises that the
   * fingerprint names the tree's content (a commit SHA, a digest, {@link fingerprintTree}), and must not
   * write into the slot. A hit (sentinel present) returns without copying and touches the sentinel's mtime; a
   * repeated call for a fingerprint this object already resolved does at most that touch, once per
   * `min(1 s, minAgeMs / 2)`. A miss copies through `cas.stage` and then schedules a background eviction
   * pass when `maxBytes` is set. Concurrent calls in this process for one fingerprint copy once; concurrent
   * processes all succeed and all get a complete copy.
   *
   * What a concurrent reader observes: the returned slot holds the whole tree and its sentinel; it is never
   * modified, and it disappears only by one atomic rename (eviction), which never happens to an entry used
   * within `minAgeMs`. An entry evicted or half-removed by someone else is treated as a miss and rebuilt.
   *
   * Without `fingerprint`, the copy is a scratch directory private to this object, one per source real path
   * (the same path for repeated calls, even if the source changed meanwhile), removed by {@link close}.
   *
   * Throws TypeError for an invalid fingerprint (stating the rule); {@link StageCacheError} `ENOENT` for a
   * missing source, `ENOTDIR` for a source that is not a directory, the filesystem's code for an unreadable
   * file or an unwritable root, `ECLOSED` after close; `signal.reason` on abort. On any failure nothing is
   * left behind: no slot, no temp, no scratch copy.
   */
  async stage(source: string, fingerprint?: string, options: StageCallOptions = {}): Promise<string> {
    if (this.#closed) throw new StageCacheError("ECLOSED", "the cache is closed", { path: this.root });
    if (fingerprint === undefined) return this.#stageScratch(source, options);
    assertFingerprint(fingerprint);

    const memo = this.#resolved.get(fingerprint);
    if (memo) {
      const now = Date.now();
      if (now - memo.touchedAt < this.#touchIntervalMs) return memo.path;
      if (await touch(join(memo.path, STAGE_COMPLETE_SENTINEL))) {
        memo.touchedAt = now;
        return memo.path;
      }
      this.#resolved.delete(fingerprint);
    }

    for (;;) {
      options.signal?.throwIfAborted();
      let pending = this.#inflight.get(fingerprint);
      const mine = pending === undefined;
      if (!pending) {
        const started = this.#resolve(source, fingerprint, options).finally(() => {
          if (this.#inflight.get(fingerprint) === started) this.#inflight.delete(fingerprint);
        });
        this.#inflight.set(fingerprint, started);
        pending = started;
      }
      try {
        return await abortable(pending, options.signal);
      } catch (error) {
        // Joined a copy whose own caller aborted: that is not our failure; start over.
        if (!mine && isAbort(error) && !options.signal?.aborted) continue;
        throw error;
      }
    }
  }

  /**
   * Runs one eviction pass now (after any pass in flight): removes complete entries oldest-used first while
   * the total exceeds `maxBytes`, skipping entries used within `minAgeMs`; with no `maxBytes` it only
   * measures. Resolves to the removed slot paths, the bytes freed and the bytes that remain.
   * Throws the filesystem error (with `code`) when the root cannot be listed.
   */
  sweep(): Promise<SweepResult> {
    return this.#evictor.sweep();
  }

  /**
   * Waits for stage calls and an eviction pass in flight, then removes this object's scratch copies.
   * Fingerprinted entries stay. Later `stage` calls throw `ECLOSED`. Idempotent; never throws.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#inflight.values()]);
    await this.#evictor.idle();
    const scratch = await Promise.allSettled([...this.#scratch.values()]);
    this.#scratch.clear();
    this.#resolved.clear();
    for (const result of scratch) {
      if (result.status === "fulfilled") await removeQuietly(result.value);
    }
  }

  async #resolve(source: string, fingerprint: string, options: StageCallOptions): Promise<string> {
    const layout = this.#layout;
    const slot = layout.slotPath(fingerprint);
    const sentinel = layout.sentinelPath(fingerprint);
    const fanOut = layout.fanOutPath(fingerprint);
    let sourceReal: string | undefined;
    let builtHere = false;
    let lastError: StageError | undefined;
    for (let attempt = 1; ; attempt++) {
      // Every return goes through this touch, after a build or an adoption too: it marks the entry used
      // at least as late as the caller gets its path, and it succeeds only while the entry is complete and
      // unclaimed, so no evictor can take the entry for the next minAgeMs.
      const touchedAt = Date.now();
      if (await touch(sentinel)) {
        if (builtHere) this.#evictor.schedule();
        this.#resolved.set(fingerprint, { path: slot, touchedAt });
        return slot;
      }
      if (attempt > MAX_ATTEMPTS) {
        const why = lastError ? `: ${lastError.message}` : ", it was evicted again after every build";
        throw new StageCacheError(lastError?.code ?? "EAGAIN", `cannot publish ${slot}${why}`, {
          path: slot,
          cause: lastError,
        });
      }
      // Check the source before any temp dir exists, so bad input leaves nothing, not even a temp.
      sourceReal ??= await sourceRoot(source);
      const realSource = sourceReal;
      try {
        const { adopted } = await casStage({
          parent: layout.stagingDir,
          final: slot,
          tmpPrefix: "stage tmp",
          finalizePrefix: "stage finalize",
          signal: options.signal,
          build: async (staging, { signal }) => {
            const record = await copyTree(realSource, staging, {
              ...this.#walkOptions(signal),
              onProgress: options.onProgress,
            });
            // The sentinel is the last thing written into the staging dir, so the rename below publishes a
            // complete entry and its sentinel in one step. It records the size, so eviction never walks,
            // and the manifest of what was written, so a slot can be verified later.
            await writeFile(join(staging, STAGE_COMPLETE_SENTINEL), sentinelText(record));
            // Eviction removes empty fan-out directories; make ours as late as possible before the rename.
            await mkdir(fanOut, { recursive: true });
          },
          adopt: () => exists(sentinel),
        });
        this.#evictor.forget(slot);
        builtHere ||= !adopted;
      } catch (error) {
        if (!(error instanceof StageError)) throw error;
        if (error.phase === "tmp") throw rootError(this.root, error.cause ?? error);
        lastError = error;
        // An evictor's claim lasts microseconds: wait for its outcome rather than take the slot for debris.
        // It either gives the entry back (a hit touched it) or removes it.
        while (await isBeingEvicted(layout, fingerprint)) {
          options.signal?.throwIfAborted();
          await sleep(CLAIM_POLL_MS);
        }
        // ENOENT: an evictor removed the empty fan-out directory between our mkdir and the rename.
        // ENOTEMPTY/EEXIST (EPERM on Windows) without a sentinel: the slot holds something that is not a
        // complete entry. No writer of this package leaves that but an evictor that died mid-eviction, so
        // it is that, or debris of a foreign or older writer, or a peer's complete entry that was just
        // evicted after our rename failed.
        if (error.code !== "ENOENT" && !(await exists(sentinel))) await this.#moveDebrisAside(fingerprint);
      }
    }
  }

  /**
   * Moves whatever occupies a slot without a sentinel out of the way, in one rename, then removes it.
   * Deleting in place would race: between our check and the delete, the occupant could have been
   * replaced by a complete entry (a peer's rename onto an empty directory succeeds). So the occupant is
   * renamed into trash first and inspected there: if it turns out complete, it is put back.
   */
  async #moveDebrisAside(fingerprint: string): Promise<void> {
    const slot = this.#layout.slotPath(fingerprint);
    const trash = this.#layout.trashPath(fingerprint);
    try {
      await rename(slot, trash);
    } catch (error) {
      if (codeOf(error) === "ENOENT") return;
      throw new StageCacheError(codeOf(error) ?? "EIO", `cannot move aside ${slot}: ${messageOf(error)}`, {
        path: slot,
        cause: error,
      });
    }
    if (await exists(join(trash, STAGE_COMPLETE_SENTINEL))) {
      const restored = await rename(trash, slot).then(
        () => true,
        () => false,
      );
      if (restored) return;
    } else if (await exists(join(trash, EVICTION_CLAIM))) {
      this.#onWarning("removed an entry whose eviction was interrupted", slot);
    } else {
      this.#onWarning("removed an incomplete entry left by another writer", slot);
    }
    await removeQuietly(trash);
  }

  async #stageScratch(source: string, options: StageCallOptions): Promise<string> {
    const root = await sourceRoot(source);
    let pending = this.#scratch.get(root);
    if (!pending) {
      const started = (async () => {
        const dir = await mkdtemp(join(this.#layout.scratchDir, "s-")).catch((cause: unknown) => {
          throw rootError(this.root, cause);
        });
        try {
          await copyTree(root, dir, { ...this.#walkOptions(options.signal), onProgress: options.onProgress });
        } catch (error) {
          await removeQuietly(dir);
          throw error;
        }
        return dir;
      })();
      // A failed copy is not memoized: the next call tries again.
      started.catch(() => {
        if (this.#scratch.get(root) === started) this.#scratch.delete(root);
      });
      this.#scratch.set(root, started);
      pending = started;
    }
    return abortable(pending, options.signal);
  }

  #walkOptions(signal: AbortSignal | undefined): WalkOptions {
    const options: WalkOptions = {
      followExternalSymlinks: this.#followExternalSymlinks,
      onWarning: this.#onWarning,
    };
    if (signal) options.signal = signal;
    return options;
  }
}

/**
 * Marks an entry used and checks that it is complete, in one step: sets its sentinel's mtime to now. False
 * when there is no sentinel (no entry, an incomplete one, or one an evictor has claimed).
 */
async function touch(sentinel: string): Promise<boolean> {
  const now = new Date();
  try {
    await utimes(sentinel, now, now);
    return true;
  } catch (error) {
    const code = codeOf(error);
    if (code === "ENOENT" || code === "ENOTDIR") return false;
    // Not ours to touch (a cache shared read-only): it still exists; LRU order just does not move.
    return true;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function removeQuietly(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
}

async function removeStaleScratch(
  layout: Layout,
  staleAfterMs: number,
  onWarning: (message: string, path: string) => void,
): Promise<void> {
  const cutoff = Date.now() - staleAfterMs;
  const names = await readdir(layout.scratchDir).catch(() => [] as string[]);
  for (const name of names) {
    const path = join(layout.scratchDir, name);
    const stats = await lstat(path).catch(() => undefined);
    if (!stats || stats.mtimeMs > cutoff) continue;
    await rm(path, { recursive: true, force: true, maxRetries: 3 }).catch((error: unknown) => {
      onWarning(`could not remove stale scratch copy: ${messageOf(error)}`, path);
    });
  }
}

function rootError(root: string, cause: unknown): StageCacheError {
  return new StageCacheError(
    codeOf(cause) ?? "EIO",
    `cannot write to cache root ${root}: ${messageOf(cause)}; pass a writable root or set CAS_STAGE_CACHE_DIR`,
    { path: root, cause },
  );
}

function nonNegative(name: string, value: number): number {
  if (typeof value !== "number" || !(value >= 0)) {
    throw new RangeError(`stage-cache: ${name} must be a number >= 0, got ${String(value)}`);
  }
  return value;
}

function isAbort(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === "AbortError";
}

/** `promise`, or a rejection with `signal.reason` as soon as the signal aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolvePromise, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolvePromise(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
