import { lstatSync, opendirSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { syncDirectory, syncTree } from "./durable.js";
import { StageError } from "./errors.js";
import { removeTreeQuietly } from "./fs.js";
import { renameDirectory } from "./rename.js";
import { makeTempDir, tempPrefixFor } from "./temp-name.js";

/** How long an aborted `stage` waits for its build to stop before rejecting all the same. */
const ABORT_GRACE_MS = 1_000;

/** What `build` receives besides the staging directory. */
export interface BuildContext {
  /** The `signal` passed to {@link stage}, so a long build can stop early. */
  signal?: AbortSignal;
}

export interface StageOptions {
  /** Directory that receives the temp dir. It must already exist: `stage` never creates it. */
  parent: string;
  /** The slot to produce. Put it on `parent`'s filesystem: a rename across filesystems fails (EXDEV). */
  final: string;
  /** Prefix of the error message when the temp dir cannot be created. Default `"stage tmp"`. */
  tmpPrefix?: string;
  /** Prefix of the error message when publishing fails and `adopt` returns false. Default `"stage finalize"`. */
  finalizePrefix?: string;
  /** Writes the tree into `staging` (an empty directory). Its errors propagate unwrapped. */
  build: (staging: string, ctx: BuildContext) => void | Promise<void>;
  /**
   * Called only when publishing fails (the slot exists, or the rename failed): returns true when `final`
   * already holds a finished tree made by a peer, which is then adopted. Its errors propagate unwrapped.
   */
  adopt: () => boolean | Promise<boolean>;
  /**
   * Aborting before the slot is published rejects with `signal.reason` as soon as `build` stops (with its temp
   * dir removed), or after a second if `build` ignores the signal; nothing is published either way, and the
   * temp dir of such a build is removed as soon as it settles.
   */
  signal?: AbortSignal;
  /** fsync the staged tree before publishing it and the slot's directory after. Default false. */
  durable?: boolean;
}

export interface StageResult {
  /** True when `final` is a peer's tree that was adopted, false when this call published it. */
  adopted: boolean;
}

/**
 * Produces the directory `final` atomically: builds it in a fresh temp dir `<basename(final)>.tmp.XXXXXX`
 * inside `parent` (mode `0o777` less the umask, like any `mkdir`), then publishes it in one step: a rename
 * onto `final`, or, for a build that wrote nothing, an exclusive `mkdir` of `final`.
 *
 * `stage` does not look for an existing slot before building: callers that expect hits check first (see the
 * README) and call `stage` on a miss.
 *
 * Guarantees:
 * - A reader of `final` sees nothing or the whole tree that one `build` wrote, never a partial one.
 * - Exactly one call publishes a given `final` (`{ adopted: false }`), even when every build is empty:
 *   `stage` never replaces an existing `final`, not even an empty directory. Every other call removes its
 *   temp dir and resolves `{ adopted: true }` when `adopt()` recognises the winner. (POSIX `rename` would
 *   replace an empty directory, so `final` is checked just before the rename; a directory made empty at
 *   `final` within those microseconds by a foreign writer can still be replaced.)
 * - No temp dir is left behind by any outcome, except when the process itself dies (see
 *   {@link sweepStaleTemps} for that debris), or when an aborted `build` never settles.
 * - With `durable: true`, a power loss after `stage` resolves cannot leave `final` with empty files.
 *
 * Throws:
 * - {@link StageError} `phase: "tmp"` when the temp dir cannot be made (`code` from the cause, e.g.
 *   `ENOENT` for a missing `parent`);
 * - whatever `build` or `adopt` throws, as the very same value;
 * - `signal.reason` when the signal aborts before the slot is published: once `build` has stopped and the
 *   temp dir is gone, or after at most a second for a `build` that ignores its signal (whose temp dir goes
 *   once it settles);
 * - {@link StageError} `phase: "finalize"` when publishing fails (`EEXIST` or `ENOTEMPTY` for a taken slot,
 *   `EXDEV`, `ENOENT` for a missing directory of `final`, …) and `adopt()` returns false.
 *
 * On Windows a rename that fails with EPERM/EACCES/EBUSY while `final` does not exist is retried for about
 * a second before `adopt` is consulted, since antivirus and indexers hold files briefly.
 */
export async function stage(options: StageOptions): Promise<StageResult> {
  const { parent, final, build, adopt, signal, durable = false } = options;
  const tmpPrefix = options.tmpPrefix ?? "stage tmp";
  const finalizePrefix = options.finalizePrefix ?? "stage finalize";

  signal?.throwIfAborted();
  let staging: string;
  try {
    staging = await makeTempDir(parent, tempPrefixFor(final));
  } catch (cause) {
    throw new StageError("tmp", tmpPrefix, cause, parent);
  }

  const built = await runBuild(build, staging, signal);
  if (built.outcome === "aborted") {
    // The build may still be writing into staging: remove it only once the build is done with it. A build
    // that stops on its signal (killing its child processes takes a few milliseconds) is waited for, so
    // that the rejection finds nothing left; one that ignores its signal is waited for no longer than
    // ABORT_GRACE_MS, and its temp dir goes when it settles.
    const settled = built.running.then(
      () => true,
      () => true,
    );
    const cleanup = settled.then(() => removeTreeQuietly(staging));
    const patience = new AbortController();
    const gaveUp = sleep(ABORT_GRACE_MS, false, { ref: false, signal: patience.signal }).catch(() => false);
    const stopped = await Promise.race([settled, gaveUp]);
    patience.abort();
    if (stopped) await cleanup;
    throw signal?.reason;
  }
  try {
    if (built.outcome === "failed") throw built.error;
    signal?.throwIfAborted();
    if (durable) await syncTree(staging);
  } catch (error) {
    await removeTreeQuietly(staging);
    throw error;
  }

  try {
    await publish(staging, final);
  } catch (publishError) {
    // The temp dir goes first, so that it is gone even when adopt throws.
    await removeTreeQuietly(staging);
    if (await adopt()) return { adopted: true };
    throw new StageError("finalize", finalizePrefix, publishError, final);
  }
  // The new entry is in final's directory: it is durable only once that directory is.
  if (durable) await syncDirectory(dirname(resolve(final)));
  return { adopted: false };
}

type BuildResult =
  | { outcome: "done" }
  | { outcome: "failed"; error: unknown }
  | { outcome: "aborted"; running: Promise<unknown> };

/** Runs `build`, settling as soon as it settles or `signal` aborts, whichever comes first. Never rejects. */
function runBuild(
  build: StageOptions["build"],
  staging: string,
  signal: AbortSignal | undefined,
): Promise<BuildResult> {
  // An async wrapper, so that a synchronous throw becomes a rejection like any other.
  const running = (async () => build(staging, signal ? { signal } : {}))();
  return new Promise<BuildResult>((settle) => {
    const onAbort = () => settle({ outcome: "aborted", running });
    signal?.addEventListener("abort", onAbort, { once: true });
    running.then(
      () => settle({ outcome: "done" }),
      (error: unknown) => settle({ outcome: "failed", error }),
    );
    void running.finally(() => signal?.removeEventListener("abort", onAbort)).catch(() => {});
  });
}

/**
 * Moves the built tree to `final` in one step, never replacing anything already there. A rename replaces an
 * empty directory, and an empty build would replace another empty build's slot: an empty tree is published
 * by an exclusive `mkdir` instead, and a non-empty one only after checking that `final` is free.
 */
async function publish(staging: string, final: string): Promise<void> {
  // The two looks below are synchronous: each costs a few microseconds, where a round trip through libuv's
  // thread pool made a small stage cost about 1.5 times a bare mkdtemp + rename.
  if (isEmptyDirectory(staging)) {
    await mkdir(final);
    // Published: from here on nothing may fail the call, so the empty temp dir goes quietly.
    await removeTreeQuietly(staging);
    return;
  }
  if (lstatSync(final, { throwIfNoEntry: false }) !== undefined) throw slotTakenError(staging, final);
  await renameDirectory(staging, final);
}

/** Whether the directory at `path` has no entries; reads one entry at most. */
function isEmptyDirectory(path: string): boolean {
  const dir = opendirSync(path);
  try {
    return dir.readSync() === null;
  } finally {
    dir.closeSync();
  }
}

/** The error a rename onto an existing slot gives, for the slot found taken before the rename. */
function slotTakenError(staging: string, final: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`EEXIST: file already exists, rename '${staging}' -> '${final}'`), {
    code: "EEXIST",
    syscall: "rename",
    path: staging,
    dest: final,
  });
}
