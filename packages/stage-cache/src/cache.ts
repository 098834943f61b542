import { accessSync, constants, mkdirSync, realpathSync } from "node:fs";
import { rmdir } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import {
  CLAIM_GRACE_MS,
  defaultCacheDir,
  type EntryStore,
  type EntryStoreHooks,
  StageError,
  TRASH_GRACE_MS,
} from "@cas-stage/cas";
import { copyTree, type StageProgress } from "./copy.js";
import {
  type Debris,
  type DebrisContext,
  findDebris,
  recordSlotScan,
  removeDebris,
  slotScanDue,
} from "./debris.js";
import { asStageCacheError, cacheRootError, StageCacheError } from "./errors.js";
import { type CacheEntry, Evictor, entrySize, listEntries, type SweepResult } from "./evict.js";
import { assertFingerprint, Layout, STAGE_COMPLETE_SENTINEL } from "./layout.js";
import { ScratchCopies } from "./scratch.js";
import { sentinelText } from "./sentinel.js";
import { SingleFlight } from "./single-flight.js";
import { type VerifyOptions, type VerifyResult, verifyEntries } from "./verify.js";
import { sourceRoot, type WalkOptions } from "./walk.js";

export interface StageCacheOptions {
  /** Cache root. Default `defaultCacheDir() + "/stage"` (`$CAS_STAGE_CACHE_DIR/stage` when that is set). */
  root?: string;
  /** Soft cap on the bytes of complete entries; 0 or absent means no cap (no size eviction). */
  maxBytes?: number;
  /** Eviction never removes an entry used more recently than this. Default 10 minutes. */
  minAgeMs?: number;
  /**
   * Debris older than this is removed by `clean()` (and so by `open()`): stage temps, incomplete slots, and
   * scratch copies whose owner is not known to run (see {@link StageCache.stage}). Default 24 hours.
   * Trash of an interrupted eviction is removed after at most a minute, and claims are given back after at
   * most 2 s, or after this when shorter: 0 acts on all debris at once, for use when no other process can
   * be using the cache.
   */
  staleAfterMs?: number;
  /** Copy files behind symlinks that resolve outside the source root. Default false (skip and warn). */
  followExternalSymlinks?: boolean;
  /** Receives every warning (skipped external symlink, failed background eviction…). Libraries never print. */
  onWarning?: (message: string, path: string) => void;
  /**
   * Whether `open()` runs {@link StageCache.clean}. Default true. False leaves all debris in place, for
   * tools that report it before removing it (`list()`, `clean({ dryRun: true })`).
   */
  cleanOnOpen?: boolean;
}

/** Options of one {@link StageCache.stage} call. */
export interface StageCallOptions {
  /** Aborting rejects this call with `signal.reason` and stops a copy it started; nothing is left behind. */
  signal?: AbortSignal;
  /**
   * Called after each copied file when this call copies (never on a hit). Called often: keep it cheap.
   * A call that joins a copy already running in this process for the same fingerprint gets no progress.
   */
  onProgress?: (progress: StageProgress) => void;
}

/** What {@link StageCache.list} finds. */
export interface CacheListing {
  /** Complete entries, most recently used first. */
  entries: CacheEntry[];
  /** Everything else under the root, with sizes (see `DebrisKind` for the kinds and when each is stale). */
  debris: Debris[];
}

/** What {@link StageCache.clean} did (or, in a dry run, would do). */
export interface CleanResult {
  /** Debris removed. */
  removed: Debris[];
  /** Bytes of file content the removed debris held. */
  freedBytes: number;
  /** Entries whose interrupted eviction was undone: whole, they are complete entries again. */
  repaired: Debris[];
}

/** What {@link StageCache.remove} did. */
export interface RemoveResult {
  fingerprint: string;
  /** The slot looked at (the entry's path when there was one). */
  path: string;
  removed: boolean;
  /**
   * Why nothing was removed: no complete entry for the fingerprint (`not-found`), it was used within
   * `minAgeMs` (`recently-used`), or a hit used it while it was being removed (`in-use`).
   */
  reason?: "not-found" | "recently-used" | "in-use";
  /** Bytes of the entry (freed when `removed`). */
  bytes: number;
  /** The entry's last use, when there was one. */
  lastUsedMs?: number;
}

/**
 * @internal Test seam, not a public API: the points of the eviction protocol where a test can stop, and
 * the grace periods it can shorten, passed to `open()` under this symbol.
 */
export const TEST_HOOKS = Symbol.for("@cas-stage/stage-cache:test-hooks");

/** @internal */
export interface TestHooks extends EntryStoreHooks {
  /** After an eviction pass listed the entries, before it removes any. */
  afterList?: (entries: readonly CacheEntry[]) => unknown;
  /** Overrides the age after which a claim is taken for an interrupted eviction. */
  claimGraceMs?: number;
  /** Overrides how long a memoized hit goes without touching its entry again. */
  touchIntervalMs?: number;
}

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;
/** A hit touches the entry at most this often per process (see `#touchIntervalMs`). */
const MAX_TOUCH_INTERVAL_MS = 1000;

interface Resolved {
  path: string;
  touchedAt: number;
}

interface Settings {
  layout: Layout;
  realRoot: string;
  store: EntryStore;
  maxBytes: number;
  minAgeMs: number;
  staleAfterMs: number;
  followExternalSymlinks: boolean;
  onWarning: (message: string, path: string) => void;
  hooks: TestHooks;
}

/**
 * A content-addressed cache of directory copies under one root.
 *
 * With a fingerprint, the copy is `<root>/<fan-out>/<name>/`, shared by every process using the root, where
 * the name is the fingerprint with each upper-case letter written `!` plus its lower-case form and the
 * fan-out is the same of its first two characters (`ab12…` → `ab/ab12…`, `ABc` → `!a!b/!a!bc`), so slots
 * stay apart on case-insensitive filesystems. It is complete exactly when it holds
 * {@link STAGE_COMPLETE_SENTINEL}, written inside the staging directory as the build's last step, so the
 * rename that publishes the slot publishes the sentinel with it. Hits, publication and eviction follow
 * cas's `EntryStore` protocol: no call ever deletes a slot in place, and see {@link StageCache.stage} for
 * what a concurrent reader observes.
 *
 * Without a fingerprint, each source gets a private scratch copy under `<root>/.scratch/`, removed by
 * {@link StageCache.close}.
 */
export class StageCache {
  /** The absolute cache root. */
  readonly root: string;
  readonly #settings: Settings;
  readonly #debris: DebrisContext;
  readonly #evictor: Evictor;
  readonly #scratch: ScratchCopies;
  /**
   * A memoized hit re-touches (and so re-checks) its entry only when the last touch by this process is at
   * least this old. Safe because an entry touched less than `minAgeMs` ago cannot be evicted: skipping a
   * touch for at most `minAgeMs / 2` leaves the entry younger than `minAgeMs` throughout.
   */
  readonly #touchIntervalMs: number;
  readonly #resolved = new Map<string, Resolved>();
  readonly #flights = new SingleFlight<string>();
  #closed = false;

  private constructor(settings: Settings) {
    const { layout, store, onWarning } = settings;
    this.root = layout.root;
    this.#settings = settings;
    this.#touchIntervalMs =
      settings.hooks.touchIntervalMs ?? Math.min(MAX_TOUCH_INTERVAL_MS, settings.minAgeMs / 2);
    this.#evictor = new Evictor(layout, store, {
      maxBytes: settings.maxBytes,
      minAgeMs: settings.minAgeMs,
      onWarning,
      afterList: settings.hooks.afterList,
    });
    this.#debris = {
      layout,
      store,
      staleAfterMs: settings.staleAfterMs,
      trashGraceMs: Math.min(TRASH_GRACE_MS, settings.staleAfterMs),
      onWarning,
    };
    this.#scratch = new ScratchCopies(layout.scratchDir, layout.root, (source, target, signal, onProgress) =>
      copyTree(source, target, { ...this.#walkOptions(signal), onProgress }),
    );
  }

  /**
   * Opens (creating if needed) a cache root and, unless `cleanOnOpen` is false, removes its stale debris
   * (see {@link clean}), at a cost that does not grow with the number of entries: stale temps, scratch
   * copies and trash every time (they live in private directories); claimed and incomplete slots, which
   * only a look at every slot finds, on every call while the root holds at most 64 slots, and otherwise at
   * most once per 10 minutes (or `staleAfterMs`, when shorter) per root, as a stamp in the root records
   * (`clean()` always looks at every slot). Failing to remove debris is only warned about.
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
    const hooks = (options as { [TEST_HOOKS]?: TestHooks })[TEST_HOOKS] ?? {};
    const layout = new Layout(root);
    let realRoot: string;
    try {
      // Synchronous: a few quick calls, each far cheaper than a round trip to the thread pool.
      for (const dir of [root, layout.stagingDir, layout.scratchDir, layout.trashDir]) {
        mkdirSync(dir, { recursive: true });
      }
      // mkdir of existing directories proves nothing about writing: check it.
      accessSync(root, constants.W_OK);
      realRoot = realpathSync.native(root);
    } catch (cause) {
      throw cacheRootError(root, cause);
    }
    const store = layout.entryStore({
      onWarning,
      claimGraceMs: hooks.claimGraceMs ?? Math.min(CLAIM_GRACE_MS, staleAfterMs),
      hooks,
    });
    const cache = new StageCache({
      layout,
      realRoot,
      store,
      maxBytes,
      minAgeMs,
      staleAfterMs,
      followExternalSymlinks: options.followExternalSymlinks ?? false,
      onWarning,
      hooks,
    });
    if (options.cleanOnOpen ?? true) {
      try {
        const { debris, slots } = await findDebris(cache.#debris, {
          measure: false,
          slots: slotScanDue(cache.#debris),
        });
        await removeDebris(cache.#debris, debris);
        if (slots !== undefined) await recordSlotScan(cache.#debris, slots);
      } catch (error) {
        onWarning(`could not look for debris: ${(error as Error).message}`, root);
      }
    }
    return cache;
  }

  /**
   * Returns a directory holding a copy of `source` (see `walkTree` for which files a copy holds).
   *
   * With `fingerprint`, the copy is the shared slot of that fingerprint (see the class comment); the caller
   * promises that the fingerprint names the tree's content (a commit SHA, a digest, {@link fingerprintTree}),
   * and must not write into the slot. A hit (sentinel present) returns without looking at the source and
   * touches the sentinel's mtime; a repeated call for a fingerprint this object already resolved does at most
   * that touch, once per `min(1 s, minAgeMs / 2)`. A miss copies through `cas.stage` and then schedules a
   * background eviction pass when `maxBytes` is set. Concurrent calls in this process for one fingerprint
   * copy once; one caller's abort never fails another caller (whatever the abort's reason), only its own.
   * Concurrent processes all succeed and all get a complete copy, also while others evict.
   *
   * What a concurrent reader observes: the returned slot holds the whole tree and its sentinel; it is never
   * modified, and it disappears only by one atomic rename (eviction), which never happens to an entry used
   * within `minAgeMs`. An entry evicted or half-removed by someone else is treated as a miss and rebuilt.
   *
   * Shared caches: an entry another user made is a hit only when this user can read it; its use is recorded
   * when this user may write its sentinel (a common group and umask 002), and a warning says once when not.
   * An entry this user cannot read is an error (`EACCES`), never a hit.
   *
   * Without `fingerprint`, the copy is a scratch directory private to this object, one per source real path:
   * the same path for repeated calls (not refreshed when the source changed), unless it was removed
   * meanwhile, in which case a new copy is made. Another process's `open()` never removes the scratch copy
   * of a process that still runs, as far as it can check (the same machine and pid namespace, on Linux);
   * where it cannot check, it removes only copies unused for `staleAfterMs`, and each call here marks the
   * copy used. {@link close} removes them.
   *
   * Throws TypeError for an invalid fingerprint (stating the rule); {@link StageCacheError} `ENOENT` for a
   * missing source, `ENOTDIR` for a source that is not a directory, `ESOURCEINCACHE` for a source inside the
   * cache root (checked before anything is written), the filesystem's code for an unreadable file, an
   * unwritable root or an entry of another user this one cannot read, `EAGAIN` when the entry was evicted
   * again after every one of several builds, `ECLOSED` after close; `signal.reason` on abort. On any
   * failure nothing is left behind: no slot, no temp, no scratch copy.
   */
  async stage(source: string, fingerprint?: string, options: StageCallOptions = {}): Promise<string> {
    this.#assertOpen();
    if (fingerprint === undefined) {
      const real = await this.#checkedSource(source);
      return this.#scratch.get(real, options);
    }
    assertFingerprint(fingerprint);

    const memo = this.#resolved.get(fingerprint);
    if (memo) {
      const now = Date.now();
      if (now - memo.touchedAt < this.#touchIntervalMs) return memo.path;
      if (await this.#touch(memo.path)) {
        memo.touchedAt = now;
        return memo.path;
      }
      this.#resolved.delete(fingerprint);
    }
    return this.#flights.run(fingerprint, options.signal, (signal) =>
      this.#resolve(source, fingerprint, signal, options.onProgress),
    );
  }

  /**
   * Runs one eviction pass now (after any pass in flight): removes complete entries least recently used
   * first while the total exceeds `maxBytes`, never one used within `minAgeMs`, never an incomplete one;
   * removes the fan-out directories it empties, gives back entries whose evictor died and removes abandoned
   * trash. Without `maxBytes` (0, the default) there is no cap: the pass removes nothing and only measures,
   * which the result says (`measuredOnly`). With `dryRun`, nothing is touched and the result says what the
   * pass would remove.
   *
   * Throws the filesystem error (with `code`) when the root cannot be listed, or an entry cannot be moved
   * to the trash; `ECLOSED` after close.
   */
  async sweep(options: { dryRun?: boolean } = {}): Promise<SweepResult> {
    this.#assertOpen();
    return this.#evictor.sweep(options.dryRun ?? false);
  }

  /**
   * Lists the complete entries (fingerprint, path, bytes, last use) and the debris (with sizes, and whether
   * `clean()` would act on it now). Reads only. Throws the filesystem error when the root cannot be listed;
   * `ECLOSED` after close.
   */
  async list(): Promise<CacheListing> {
    this.#assertOpen();
    const entries = await listEntries(this.#settings.layout);
    entries.sort((a, b) => b.lastUsedMs - a.lastUsedMs);
    return { entries, debris: (await findDebris(this.#debris, { measure: true })).debris };
  }

  /**
   * Removes the stale debris, and only debris (see `DebrisKind`): stage temps, scratch copies and incomplete
   * slots older than `staleAfterMs` (scratch copies only when their owner is not known to run), trash no
   * evictor can restore; and gives back entries whose eviction was interrupted. Complete entries are never
   * touched. With `dryRun`, removes nothing and reports what it would do. A failure to remove one item goes
   * to `onWarning`; throws only when the root cannot be listed, and `ECLOSED` after close.
   */
  async clean(options: { dryRun?: boolean } = {}): Promise<CleanResult> {
    this.#assertOpen();
    const { debris } = await findDebris(this.#debris, { measure: true });
    const { removed, repaired } = options.dryRun
      ? {
          removed: debris.filter((item) => item.stale && item.kind !== "claimed"),
          repaired: debris.filter((item) => item.stale && item.kind === "claimed"),
        }
      : await removeDebris(this.#debris, debris);
    const freedBytes = removed.reduce((sum, item) => sum + item.bytes, 0);
    return { removed, freedBytes, repaired };
  }

  /**
   * Removes the complete entry of `fingerprint` through the eviction protocol: the slot leaves in one
   * rename, never half-deleted, and an entry used within `minAgeMs` (or touched while it is being removed)
   * stays, unless `force`. With `force` the entry goes even when just used: a process that holds its path
   * may then find it gone. A slot left by an older version (mixed-case fingerprint) is found too.
   *
   * Resolves to what happened (see {@link RemoveResult}); never removes debris (see {@link clean}). Throws
   * TypeError for an invalid fingerprint, {@link StageCacheError} with the filesystem's code when the entry
   * cannot be moved to the trash (it then stays whole), `ECLOSED` after close.
   */
  async remove(fingerprint: string, options: { force?: boolean } = {}): Promise<RemoveResult> {
    this.#assertOpen();
    assertFingerprint(fingerprint);
    const { layout, store, minAgeMs } = this.#settings;
    const force = options.force ?? false;
    const slots = [layout.slotPath(fingerprint)];
    if (/[A-Z]/.test(fingerprint)) slots.push(layout.legacySlotPath(fingerprint));
    for (const slot of slots) {
      const found = await store.inspect(slot);
      if (found.state !== "complete") continue;
      const bytes = (await entrySize(slot)) ?? 0;
      const result = { fingerprint, path: slot, bytes, lastUsedMs: found.lastUsedMs };
      if (!force && Date.now() - found.lastUsedMs < minAgeMs) {
        return { ...result, removed: false, reason: "recently-used" };
      }
      let removed: boolean;
      try {
        removed = await store.evict(slot, found.lastUsedMs, { force });
      } catch (error) {
        throw asStageCacheError(error, slot);
      }
      if (!removed) {
        const gone = (await store.inspect(slot)).state === "absent";
        return { ...result, removed: false, reason: gone ? "not-found" : "in-use" };
      }
      this.#resolved.delete(fingerprint);
      this.#evictor.forget(slot);
      await rmdir(dirname(slot)).catch(() => {});
      return { ...result, removed: true };
    }
    return { fingerprint, path: layout.slotPath(fingerprint), removed: false, reason: "not-found", bytes: 0 };
  }

  /**
   * Checks every complete entry against the manifest its writer recorded in its sentinel, and with `fix`
   * moves each bad one aside through the eviction path, so that the next stage of it copies again: see
   * `verifyEntries` (verify.ts) for what is compared, what a concurrent eviction yields (`gone`) and what
   * is thrown. Never touches an entry's last use. Throws `ECLOSED` after close.
   */
  async verify(options: VerifyOptions = {}): Promise<VerifyResult> {
    this.#assertOpen();
    const result = await verifyEntries(this.#settings.layout, this.#settings.store, options);
    for (const entry of result.entries.filter((verified) => verified.fixed)) {
      this.#resolved.delete(entry.fingerprint);
      this.#evictor.forget(entry.path);
      await rmdir(dirname(entry.path)).catch(() => {});
    }
    return result;
  }

  /**
   * Waits for stage calls and an eviction pass in flight, then removes this object's scratch copies.
   * Fingerprinted entries stay. Later calls throw `ECLOSED`. Idempotent; never throws.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#flights.settled();
    await this.#evictor.idle();
    await this.#scratch.removeAll();
    this.#resolved.clear();
  }

  /** One stage of a fingerprint not memoized here; callers in this process share it (`#flights`). */
  async #resolve(
    source: string,
    fingerprint: string,
    signal: AbortSignal | undefined,
    onProgress: StageCallOptions["onProgress"],
  ): Promise<string> {
    const { layout, store } = this.#settings;
    const slot = layout.slotPath(fingerprint);
    // Taken before the touch that returns the entry, so the memo never believes a touch newer than it is.
    const touchedAt = Date.now();
    let outcome: "hit" | "built" | "adopted" = "hit";
    // A hit never looks at the source; a miss checks it before any temp dir exists.
    if (!(await this.#touch(slot))) {
      const real = await this.#checkedSource(source);
      try {
        ({ outcome } = await store.publish(slot, {
          signal,
          tmpPrefix: "stage tmp",
          build: async (staging, context) => {
            const record = await copyTree(real, staging, {
              ...this.#walkOptions(context.signal),
              onProgress,
            });
            // The sentinel (written last, by the store) records the size, so eviction never walks an entry,
            // and the manifest of what was written, so a slot can be verified later.
            return sentinelText(record);
          },
        }));
      } catch (error) {
        if (error instanceof StageError && error.phase === "tmp")
          throw cacheRootError(this.root, error.cause);
        throw asStageCacheError(error, slot);
      }
      this.#evictor.forget(slot);
      if (outcome === "built") this.#evictor.schedule();
    }
    this.#resolved.set(fingerprint, { path: slot, touchedAt });
    return slot;
  }

  /** `EntryStore.touch`, with its errors (an entry of another user that this one cannot read) ours. */
  async #touch(slot: string): Promise<boolean> {
    try {
      return await this.#settings.store.touch(slot);
    } catch (error) {
      throw asStageCacheError(error, slot);
    }
  }

  /**
   * The real path of `source`, checked to be a directory outside the cache root: a source inside it (the
   * root itself, `.staging`, a slot) would copy the cache, growing temps included, into itself.
   */
  async #checkedSource(source: string): Promise<string> {
    const real = await sourceRoot(source);
    const { realRoot } = this.#settings;
    if (real === realRoot || real.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep)) {
      throw new StageCacheError(
        "ESOURCEINCACHE",
        `source ${source} is inside the cache root ${this.root}: staging it would copy the cache into itself; stage a directory outside the cache`,
        { path: source },
      );
    }
    return real;
  }

  #assertOpen(): void {
    if (this.#closed) throw new StageCacheError("ECLOSED", "the cache is closed", { path: this.root });
  }

  #walkOptions(signal: AbortSignal | undefined): WalkOptions {
    const options: WalkOptions = {
      followExternalSymlinks: this.#settings.followExternalSymlinks,
      onWarning: this.#settings.onWarning,
    };
    if (signal) options.signal = signal;
    return options;
  }
}

function nonNegative(name: string, value: number): number {
  if (typeof value !== "number" || !(value >= 0)) {
    throw new RangeError(`stage-cache: ${name} must be a number >= 0, got ${String(value)}`);
  }
  return value;
}
