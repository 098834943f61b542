import { mkdtemp, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { syncDirectory, syncTree } from "./durable.js";
import { StageError } from "./errors.js";
import { renameDirectory } from "./rename.js";
import { tempPrefixFor } from "./temp-name.js";

/** What `build` receives besides the staging directory. */
export interface BuildContext {
  /** The `signal` passed to {@link stage}, so a long build can stop early. */
  signal?: AbortSignal;
}

export interface StageOptions {
  /** Directory that receives the temp dir. It must already exist: `stage` never creates it. */
  parent: string;
  /** The slot to produce. Put it in `parent`: a rename across filesystems fails (EXDEV). */
  final: string;
  /** Prefix of the error message when the temp dir cannot be created. Default `"stage tmp"`. */
  tmpPrefix?: string;
  /** Prefix of the error message when the rename fails and `adopt` returns false. Default `"stage finalize"`. */
  finalizePrefix?: string;
  /** Writes the tree into `staging` (an empty directory). Its errors propagate unwrapped. */
  build: (staging: string, ctx: BuildContext) => void | Promise<void>;
  /**
   * Called only when the rename fails: returns true when `final` already holds a finished tree made by a
   * peer, which is then adopted. Its errors propagate unwrapped.
   */
  adopt: () => boolean | Promise<boolean>;
  /** Aborting before the rename removes the temp dir and rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** fsync the staged tree before the rename and the slot's directory after it. Default false. */
  durable?: boolean;
}

export interface StageResult {
  /** True when `final` is a peer's tree that was adopted, false when this call's rename produced it. */
  adopted: boolean;
}

/**
 * Produces the directory `final` atomically: builds it in a fresh temp dir `<basename(final)>.tmp.XXXXXX`
 * inside `parent`, then renames the temp dir onto `final` in one step.
 *
 * Guarantees:
 * - A reader of `final` sees nothing or the whole tree that one `build` wrote, never a partial one.
 * - When several processes stage the same `final`, exactly one rename wins (`{ adopted: false }`); every
 *   other call removes its temp dir and resolves `{ adopted: true }` when `adopt()` recognises the winner.
 * - No temp dir is left behind by any outcome, except when the process itself dies (see
 *   {@link sweepStaleTemps} for that debris).
 * - With `durable: true`, a power loss after `stage` resolves cannot leave `final` with empty files.
 *
 * Throws:
 * - {@link StageError} `phase: "tmp"` when the temp dir cannot be made (`code` from the cause, e.g.
 *   `ENOENT` for a missing `parent`);
 * - whatever `build` or `adopt` throws, as the very same value;
 * - `signal.reason` when the signal is aborted before the rename;
 * - {@link StageError} `phase: "finalize"` when the rename fails (`ENOTEMPTY`, `EEXIST`, `EXDEV`, …) and
 *   `adopt()` returns false.
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
    staging = await mkdtemp(join(parent, tempPrefixFor(final)));
  } catch (cause) {
    throw new StageError("tmp", tmpPrefix, cause);
  }

  try {
    await build(staging, signal ? { signal } : {});
    signal?.throwIfAborted();
    if (durable) await syncTree(staging);
  } catch (error) {
    await removeQuietly(staging);
    throw error;
  }

  try {
    await renameDirectory(staging, final);
  } catch (renameError) {
    // The temp dir goes first, so that it is gone even when adopt throws.
    await removeQuietly(staging);
    if (await adopt()) return { adopted: true };
    throw new StageError("finalize", finalizePrefix, renameError);
  }
  // The rename is an entry of final's directory: it is durable only once that directory is.
  if (durable) await syncDirectory(dirname(resolve(final)));
  return { adopted: false };
}

/** Removes a temp dir, ignoring failures: the error that made us clean up is the one worth reporting. */
async function removeQuietly(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
}
