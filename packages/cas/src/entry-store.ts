import { access, constants, lstat, mkdir, open, rename, rmdir, utimes, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CasError, codeOf, messageOf, StageError } from "./errors.js";
import { makeDirectory, pathExists, removeTreeQuietly } from "./fs.js";
import type { BuildContext } from "./stage.js";

// Building and removing entries need `stage` and the trash, which bring most of this package (and
// node:crypto, for their random names); a hit needs neither. They load on first use, so that a command-line
// tool whose run is a hit starts without them.
const staging = () => import("./stage.js");
const trashBin = () => import("./trash.js");

/**
 * A claim younger than this is an eviction in progress (an evictor holds it for microseconds); an older one
 * was left by an evictor that died, and its entry, still whole, is given back.
 */
export const CLAIM_GRACE_MS = 2_000;
/** Trash younger than this may still be restored by the evictor that made it; older trash is abandoned. */
export const TRASH_GRACE_MS = 60_000;
/** Attempts at publishing one slot before giving up (each retry follows a concurrent eviction or debris). */
const MAX_PUBLISH_ATTEMPTS = 8;
/** How often a caller waiting for an eviction in progress looks again. */
const CLAIM_POLL_MS = 5;
/** Attempts at creating a slot's parent that a concurrent evictor keeps removing. */
const MAX_PARENT_ATTEMPTS = 8;

export interface EntryStoreOptions {
  /** Where builds make their temp dirs (`stage`'s `parent`); on the slots' filesystem. Made when missing. */
  stagingDir: string;
  /** Where slots go on their way out; on the slots' filesystem. Made when missing. */
  trashDir: string;
  /**
   * Path, relative to a slot, of the file whose presence means the slot is complete and whose mtime is its
   * last use. {@link EntryStore.publish} writes it inside the staging dir as the very last step.
   */
  sentinel: string;
  /** Path, relative to a slot and in the sentinel's directory, that an evictor renames the sentinel to. */
  claim: string;
  /** Receives what the store did on its own (debris removed, an interrupted eviction repaired). */
  onWarning?: (message: string, path: string) => void;
  /** A claim older than this belongs to a dead evictor. Default {@link CLAIM_GRACE_MS}. */
  claimGraceMs?: number;
  /**
   * Test seam, not a public API: awaited at the named points of the eviction protocol so that a test can
   * widen each race window deterministically.
   */
  hooks?: EntryStoreHooks;
}

/** @internal Points of the eviction protocol a test can stop at. */
export interface EntryStoreHooks {
  /** After the sentinel's mtime was re-read, before the claim. */
  beforeClaim?: (slot: string) => unknown;
  /** After the claim was checked untouched, before the slot moves to the trash. */
  beforeTrash?: (slot: string) => unknown;
  /** After the slot moved to the trash, before the last look for a late touch. */
  afterTrash?: (slot: string, trash: string) => unknown;
  /** After a hit set the sentinel's times, before it confirms the sentinel is still there. */
  afterTouch?: (slot: string) => unknown;
}

/** What a slot path holds, as {@link EntryStore.inspect} sees it. */
export type EntryState =
  | { state: "absent" }
  /** The sentinel is there; `lastUsedMs` is its mtime. */
  | { state: "complete"; lastUsedMs: number }
  /** An evictor renamed the sentinel to the claim `ageMs` ago (the claim's ctime). */
  | { state: "claimed"; ageMs: number; lastUsedMs: number }
  /** A directory (or something else) without either marker: a foreign or interrupted writer's debris. */
  | { state: "incomplete" };

/** How a {@link EntryStore.publish} call got its entry. */
export type PublishOutcome = "hit" | "built" | "adopted";

export interface PublishOptions {
  /**
   * Writes the tree into `staging` and returns the sentinel's content, which the store writes last, so the
   * rename that publishes the slot publishes its sentinel with it.
   */
  build: (staging: string, ctx: BuildContext) => string | Buffer | Promise<string | Buffer>;
  signal?: AbortSignal | undefined;
  durable?: boolean | undefined;
  /** Prefix of a temp-dir failure's message (see `stage`'s `tmpPrefix`). */
  tmpPrefix?: string | undefined;
}

/**
 * The life cycle of cache entries that are directories ("slots") marked complete by a sentinel file: hits,
 * publication, eviction and repair, safe under any interleaving of processes and any of them being killed.
 *
 * Invariants, which every method keeps:
 * 1. A slot appears only by a whole-tree rename (`stage`), with its sentinel already inside.
 * 2. Nothing is ever deleted under a slot's own path: a slot leaves by one rename into the trash and is
 *    deleted there, so a slot holding its sentinel or its claim is always whole.
 * 3. A hit ({@link touch}) sets the sentinel's mtime and then confirms the sentinel is still in place; an
 *    evictor claims an entry by renaming the sentinel, checks that no hit touched it, and only then moves it
 *    out. So a path a hit returned stays whole and in place for as long as hits keep touching it, and is
 *    removed only after going unused for as long as the caller's eviction policy says.
 *
 * The slot layout (fan-out directories, names) is the caller's; the store only needs slot paths.
 */
export class EntryStore {
  readonly stagingDir: string;
  readonly trashDir: string;
  readonly sentinel: string;
  readonly claim: string;
  readonly claimGraceMs: number;
  readonly #onWarning: (message: string, path: string) => void;
  readonly #hooks: EntryStoreHooks;
  #warnedUnmarkable = false;

  constructor(options: EntryStoreOptions) {
    if (dirname(options.sentinel) !== dirname(options.claim)) {
      throw new TypeError("EntryStore: the sentinel and the claim must be in one directory of the slot");
    }
    this.stagingDir = options.stagingDir;
    this.trashDir = options.trashDir;
    this.sentinel = options.sentinel;
    this.claim = options.claim;
    this.claimGraceMs = options.claimGraceMs ?? CLAIM_GRACE_MS;
    this.#onWarning = options.onWarning ?? (() => {});
    this.#hooks = options.hooks ?? {};
  }

  /** Creates the staging and trash directories (and their parents). Throws the `mkdir` error. */
  async prepare(): Promise<void> {
    await makeDirectory(this.stagingDir);
    await makeDirectory(this.trashDir);
  }

  /**
   * A hit: marks the entry at `slot` used now (the sentinel's mtime) and proves it complete. Resolves true
   * when the entry is complete and stays in place for the caller; false when there is none, it is
   * incomplete, or an evictor holds it (then the caller treats it as a miss).
   *
   * Another user's entry in a shared cache: when the sentinel's times cannot be set (`EPERM`: only the owner
   * may set explicit times), one byte of the sentinel is rewritten with itself, which marks it used with
   * mere write permission. When even that is refused, the hit is still returned if the slot is readable
   * (eviction by its owner then does not see this use: a warning says so once), and a slot that cannot be
   * read throws {@link CasError} `EACCES` naming it. A read-only filesystem (`EROFS`) has no eviction, so
   * its entries are hits as they are.
   */
  async touch(slot: string): Promise<boolean> {
    const sentinel = join(slot, this.sentinel);
    const now = new Date();
    try {
      await utimes(sentinel, now, now);
    } catch (error) {
      const code = codeOf(error);
      if (code === "ENOENT" || code === "ENOTDIR") return false;
      if (code !== "EPERM" && code !== "EACCES" && code !== "EROFS") throw error;
      if (!(await this.#markUsedByWriting(sentinel))) await this.#checkReadable(slot, code);
    }
    await this.#hooks.afterTouch?.(slot);
    // A touch that found the sentinel just before an evictor renamed it lands on the claim: the entry is
    // then on its way out (or given back, in which case the sentinel is here again). Look once more.
    return (await lstat(sentinel).catch(() => undefined))?.isFile() ?? false;
  }

  /** What the slot at `slot` holds. Never throws for a missing slot. */
  async inspect(slot: string): Promise<EntryState> {
    const sentinel = await lstat(join(slot, this.sentinel)).catch(() => undefined);
    if (sentinel?.isFile()) return { state: "complete", lastUsedMs: sentinel.mtimeMs };
    const claim = await lstat(join(slot, this.claim)).catch(() => undefined);
    if (claim?.isFile()) {
      // Date.now() counts whole milliseconds and the ctime finer ones: within the claim's own millisecond
      // their difference is negative, and a claim must never look younger than "just made".
      const ageMs = Math.max(0, Date.now() - claim.ctimeMs);
      return { state: "claimed", ageMs, lastUsedMs: claim.mtimeMs };
    }
    return (await pathExists(slot)) ? { state: "incomplete" } : { state: "absent" };
  }

  /**
   * Returns `slot` holding a complete entry: an existing one (a hit), or one built now by `build` and
   * published with `cas.stage`, or one a concurrent process published first (adopted). Any number of
   * processes may call this for one slot at once: all succeed and all get the same whole entry. An entry
   * evicted or claimed meanwhile, and debris in the slot (an incomplete foreign directory, an eviction whose
   * process died), are handled here: waited for, repaired or moved aside, then built again.
   *
   * Throws what `build` throws, `signal.reason` on abort, a {@link StageError} `phase: "tmp"` when no temp
   * dir can be made in `stagingDir`, a {@link StageError} `phase: "finalize"` at once when the filesystem
   * refuses the publication (`EACCES`, `EROFS`, `ENOSPC`, `EXDEV`, …: another attempt would fail alike), and
   * {@link CasError} (the last failure's code, or `EAGAIN`) when the slot was taken or evicted again after
   * several attempts. Nothing is left behind on failure.
   */
  async publish(slot: string, options: PublishOptions): Promise<{ path: string; outcome: PublishOutcome }> {
    const { signal } = options;
    let outcome: PublishOutcome = "hit";
    let lastError: StageError | undefined;
    for (let attempt = 1; ; attempt++) {
      if (await this.touch(slot)) return { path: slot, outcome };
      if (attempt > MAX_PUBLISH_ATTEMPTS) {
        const why = lastError ? `: ${lastError.message}` : ", it was evicted again after every build";
        throw new CasError(lastError?.code ?? "EAGAIN", `cannot publish ${slot}${why}`, {
          path: slot,
          cause: lastError,
        });
      }
      signal?.throwIfAborted();
      try {
        const { stage } = await staging();
        const { adopted } = await stage({
          parent: this.stagingDir,
          final: slot,
          ...(options.tmpPrefix === undefined ? {} : { tmpPrefix: options.tmpPrefix }),
          ...(signal ? { signal } : {}),
          ...(options.durable ? { durable: true } : {}),
          build: async (staging, ctx) => {
            const content = await options.build(staging, ctx);
            // Aborted during the caller's build: stop here, so that stage's cleanup is done by the time it
            // rejects, instead of writing a sentinel and a fan-out directory nobody will use.
            ctx.signal?.throwIfAborted();
            const sentinel = join(staging, this.sentinel);
            await mkdir(dirname(sentinel), { recursive: true });
            await writeFile(sentinel, content, { flag: "wx" });
            // Evictors remove emptied parents of slots (fan-out directories): make ours last.
            await this.#makeParentOf(slot);
          },
          adopt: async () => (await this.inspect(slot)).state === "complete",
        });
        outcome = adopted ? "adopted" : "built";
      } catch (error) {
        if (!(error instanceof StageError) || error.phase === "tmp" || !isRetryable(error)) throw error;
        lastError = error;
        // ENOENT: an evictor removed the slot's emptied parent between our mkdir and the rename; retry.
        if (error.code !== "ENOENT") await this.makeWay(slot, signal);
      }
    }
  }

  /**
   * Clears the way for publishing `slot` after a publication failed because the slot was taken:
   * - a complete entry: nothing to do (the caller's next touch is a hit);
   * - an eviction in progress (a claim younger than `claimGraceMs`): waits until it resolves;
   * - an eviction whose process died (an older claim): the entry is whole, so it is given back;
   * - an incomplete directory: removed (moved to the trash in one step first; if it turns out to have become
   *   a complete entry meanwhile, it is put back).
   * Throws `signal.reason` on abort and the filesystem error of a failed move (with its `code`).
   */
  async makeWay(slot: string, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const found = await this.inspect(slot);
      if (found.state !== "claimed") {
        if (found.state === "incomplete") await this.#moveIncompleteAside(slot);
        return;
      }
      if (found.ageMs >= this.claimGraceMs) {
        await this.#giveBack(slot);
        this.#onWarning("gave back an entry whose eviction was interrupted", slot);
        return;
      }
      signal?.throwIfAborted();
      await sleep(CLAIM_POLL_MS);
    }
  }

  /**
   * Removes the complete entry at `slot`, last used at `lastUsedMs` (as listed), unless a hit used it since:
   * 1. the sentinel's mtime is read again: changed means a hit touched it (Bazel's re-check);
   * 2. the sentinel is renamed to the claim: from this instant every new hit misses, yet every file stays in
   *    place for callers that already hold the path;
   * 3. the claim's mtime is read (a rename keeps it): changed means a hit touched the sentinel between 1
   *    and 2 and returned the path, so the claim is renamed back and the entry kept;
   * 4. only then does the whole slot move into the trash in one rename;
   * 5. the claim is read once more, since a touch that found the sentinel before the claim can land after
   *    step 3: touched (or given back meanwhile) means the slot is moved back;
   * 6. the trash is deleted.
   * A crash at any step leaves a whole claimed slot (given back later by {@link makeWay} or
   * {@link repairClaim}) or trash, never a partial tree under the slot's name.
   *
   * With `force`, steps 1, 3 and 5 are skipped: the entry goes even if it was just used (still atomically).
   * Resolves true when the entry was removed. Throws the filesystem error of a failed rename other than a
   * vanished entry; a failed deletion of the trash only goes to `onWarning`.
   */
  async evict(slot: string, lastUsedMs: number, options: { force?: boolean } = {}): Promise<boolean> {
    const force = options.force ?? false;
    const sentinel = join(slot, this.sentinel);
    const claim = join(slot, this.claim);
    const before = await lstat(sentinel).catch(() => undefined);
    if (!before?.isFile() || (!force && before.mtimeMs !== lastUsedMs)) return false;
    await this.#hooks.beforeClaim?.(slot);
    if (!(await renameUnlessGone(sentinel, claim))) return false;
    const claimed = await lstat(claim).catch(() => undefined);
    // Missing: a repair moved the slot aside or gave it back meanwhile; it is theirs now.
    if (!claimed) return false;
    if (!force && claimed.mtimeMs !== before.mtimeMs) {
      await this.#giveBack(slot);
      return false;
    }
    await this.#hooks.beforeTrash?.(slot);
    const trash = (await trashBin()).trashPathFor(this.trashDir, slot);
    try {
      await rename(slot, trash);
    } catch (error) {
      // ENOENT with the trash directory there: the slot was gone, moved aside by a repair meanwhile (a new
      // entry may stand at its path already, which is not ours to give back or to report). Anything else
      // (the trash directory removed by hand, a permission) must not leave the entry claimed: give it
      // back, then report.
      if (codeOf(error) === "ENOENT" && (await this.#trashIsThere())) return false;
      await this.#giveBack(slot);
      throw new CasError(codeOf(error) ?? "EIO", `cannot move ${slot} to the trash: ${messageOf(error)}`, {
        path: slot,
        cause: error,
      });
    }
    await this.#hooks.afterTrash?.(slot, trash);
    if (!force) {
      const claimInTrash = await lstat(join(trash, this.claim)).catch(() => undefined);
      if ((!claimInTrash || claimInTrash.mtimeMs !== before.mtimeMs) && (await this.#restore(trash, slot)))
        return false;
    }
    await removeTreeQuietly(trash);
    if (await pathExists(trash)) this.#onWarning("could not remove an evicted entry", trash);
    return true;
  }

  /**
   * Gives back the entry at `slot` if an evictor that died left it claimed (a claim at least `claimGraceMs`
   * old): the entry is whole, so its claim is renamed back to the sentinel. Resolves true when it did.
   */
  async repairClaim(slot: string): Promise<boolean> {
    const found = await this.inspect(slot);
    if (found.state !== "claimed" || found.ageMs < this.claimGraceMs) return false;
    await this.#giveBack(slot);
    this.#onWarning("gave back an entry whose eviction was interrupted", slot);
    return true;
  }

  /** Deletes trash no evictor can restore any more (see `removeAbandonedTrash`). Never throws. */
  removeAbandonedTrash(graceMs = TRASH_GRACE_MS): Promise<{ paths: string[] }> {
    return trashBin().then(({ removeAbandonedTrash }) =>
      removeAbandonedTrash(this.trashDir, { graceMs, onWarning: this.#onWarning }),
    );
  }

  /**
   * Whether the trash directory is there, which tells the two causes of a rename into it failing with
   * ENOENT apart: its source was gone, or the trash itself is. The source cannot be looked at instead: a
   * new entry may have taken its path since.
   */
  async #trashIsThere(): Promise<boolean> {
    return (await lstat(this.trashDir).catch(() => undefined))?.isDirectory() ?? false;
  }

  /** Renames the claim back to the sentinel; a claim already gone (given back by someone else) is fine. */
  async #giveBack(slot: string): Promise<void> {
    await renameUnlessGone(join(slot, this.claim), join(slot, this.sentinel));
  }

  /**
   * Moves a slot an evictor just took back from its trash and un-claims it. False when the slot was rebuilt
   * meanwhile (the rename back fails): the trash is then deleted by the caller.
   */
  async #restore(trash: string, slot: string): Promise<boolean> {
    try {
      await this.#renameIntoSlot(trash, slot);
    } catch {
      return false;
    }
    await this.#giveBack(slot);
    return true;
  }

  /**
   * An incomplete occupant goes: an empty directory by `rmdir` (which fails if a peer's rename just filled
   * it), anything else by one rename into the trash, then deleted. If what was moved turns out to hold a
   * sentinel or a claim, a complete entry replaced the debris between the look and the move: it goes back.
   */
  async #moveIncompleteAside(slot: string): Promise<void> {
    try {
      await rmdir(slot);
      return;
    } catch (error) {
      const code = codeOf(error);
      if (code === "ENOENT") return;
      if (code !== "ENOTEMPTY" && code !== "EEXIST" && code !== "ENOTDIR") throw moveError(slot, error);
    }
    const trash = (await trashBin()).trashPathFor(this.trashDir, slot);
    try {
      await rename(slot, trash);
    } catch (error) {
      // Gone: another repair took it first (and the slot may hold a new entry already, which the caller
      // looks at next). A missing trash dir also says ENOENT, and must not pass for that.
      if (codeOf(error) === "ENOENT" && (await this.#trashIsThere())) return;
      throw moveError(slot, error);
    }
    const whole =
      (await pathExists(join(trash, this.sentinel))) || (await pathExists(join(trash, this.claim)));
    if (
      whole &&
      (await this.#renameIntoSlot(trash, slot).then(
        () => true,
        () => false,
      ))
    )
      return;
    this.#onWarning(
      whole
        ? "removed an entry that was published twice"
        : "removed an incomplete entry left by another writer",
      slot,
    );
    await removeTreeQuietly(trash);
  }

  /** `rename(from, slot)`, making the slot's parent again if an evictor removed it meanwhile. */
  async #renameIntoSlot(from: string, slot: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await rename(from, slot);
        return;
      } catch (error) {
        if (codeOf(error) !== "ENOENT" || attempt >= MAX_PARENT_ATTEMPTS || !(await pathExists(from)))
          throw error;
        await this.#makeParentOf(slot);
      }
    }
  }

  /**
   * `mkdir -p` of the slot's parent, retried while a concurrent evictor removes it: Node's recursive mkdir
   * fails with ENOENT when the directory it found existing is removed before it checks it.
   */
  async #makeParentOf(slot: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await makeDirectory(dirname(slot));
        return;
      } catch (error) {
        if (codeOf(error) !== "ENOENT" || attempt >= MAX_PARENT_ATTEMPTS) throw error;
      }
    }
  }

  /**
   * Marks a sentinel used with write permission only: rewriting one byte with itself sets the mtime and
   * leaves the content as it was. False when that is refused too.
   */
  async #markUsedByWriting(sentinel: string): Promise<boolean> {
    let handle: Awaited<ReturnType<typeof open>> | undefined;
    try {
      handle = await open(sentinel, constants.O_RDWR | constants.O_NOFOLLOW);
      const byte = Buffer.alloc(1);
      const { bytesRead } = await handle.read(byte, 0, 1, 0);
      if (bytesRead !== 1) return false;
      await handle.write(byte, 0, 1, 0);
      return true;
    } catch {
      return false;
    } finally {
      await handle?.close().catch(() => {});
    }
  }

  /** A hit whose use cannot be recorded is still a hit if the caller can read the slot; otherwise EACCES. */
  async #checkReadable(slot: string, code: string): Promise<void> {
    try {
      await access(slot, constants.R_OK | constants.X_OK);
      await access(join(slot, this.sentinel), constants.R_OK);
    } catch (cause) {
      throw new CasError(
        "EACCES",
        `cache entry ${slot} belongs to another user and is not readable by this one; use a cache directory of your own (CAS_STAGE_CACHE_DIR), or share one with a umask that lets the others read and write (umask 002 in a common group)`,
        { path: slot, cause },
      );
    }
    if (code !== "EROFS" && !this.#warnedUnmarkable) {
      this.#warnedUnmarkable = true;
      this.#onWarning(
        "cannot mark entries of another user as used (no write permission): their owner's eviction does not see this use",
        slot,
      );
    }
  }
}

/**
 * Whether a failed publication can succeed on another attempt: the slot was taken (`EEXIST`, `ENOTEMPTY`;
 * Windows says `EPERM`/`EACCES`) or its parent vanished (`ENOENT`). A refusal of the filesystem (`EACCES`,
 * `EROFS`, `ENOSPC`, `EXDEV`, …) would fail the same way after a full rebuild, so it is thrown at once.
 */
function isRetryable(error: StageError): boolean {
  if (error.code === "EEXIST" || error.code === "ENOTEMPTY" || error.code === "ENOENT") return true;
  return process.platform === "win32" && (error.code === "EPERM" || error.code === "EACCES");
}

/** `rename`, resolving false when the source is gone (another process moved it first). */
async function renameUnlessGone(from: string, to: string): Promise<boolean> {
  try {
    await rename(from, to);
    return true;
  } catch (error) {
    if (codeOf(error) === "ENOENT") return false;
    throw error;
  }
}

function moveError(slot: string, cause: unknown): CasError {
  return new CasError(
    codeOf(cause) ?? "EIO",
    `cannot move aside the incomplete entry ${slot}: ${messageOf(cause)}`,
    {
      path: slot,
      cause,
    },
  );
}
