import { createHash } from "node:crypto";
import { readFileSync, readlinkSync } from "node:fs";
import { lstat, mkdtemp, rename, utimes } from "node:fs/promises";
import { basename, join } from "node:path";
import { codeOf, removeTree, removeTreeQuietly } from "@cas-stage/cas";
import type { StageProgress } from "./copy.js";
import { cacheRootError } from "./errors.js";
import { SingleFlight } from "./single-flight.js";

/**
 * Scratch copies: a private, writable copy of a source per cache object, for callers without a fingerprint.
 *
 * A scratch directory is named after the process that owns it:
 *
 * ```
 * <root>/.scratch/<pid>-<start>-<kernel>-XXXXXX/            in use or left by process <pid>
 * <root>/.scratch/<pid>-<start>-<kernel>-XXXXXX.deleting/   being removed by a cleaner
 * ```
 *
 * `<start>` is the owner's start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`) and
 * `<kernel>` 8 hex digits of a hash of the kernel's boot id and the owner's pid namespace. A cleaner that
 * runs on the same kernel in the same pid namespace can therefore tell for certain whether the owner still
 * runs: `/proc/<pid>/stat` exists and holds the same start time (a reused pid has another). That check
 * survives any death of the owner, SIGKILL included, and needs nothing from the owner while it runs.
 *
 * Where it cannot be made (not Linux, `/proc` hidden, another pid namespace such as another container, another
 * machine sharing the root), `<start>` and `<kernel>` are `x` or differ, and the cleaner falls back to age:
 * a scratch copy goes once unused for `staleAfterMs`. The owner marks its copy used (its mtime) each time it
 * hands the path out, so with the fallback too a copy survives as long as its owner asks for it at least
 * once per `staleAfterMs`; and a copy that was removed anyway is noticed and made again (see
 * {@link ScratchCopies.get}).
 */
const SCRATCH_NAME = /^(\d+)-(\d+|x)-([0-9a-f]{8}|x)-[A-Za-z0-9]{6}$/;
const DELETING_SUFFIX = ".deleting";
const UNKNOWN = "x";

/** Copies the tree at `source` into the empty directory `target`. */
export type CopyInto = (
  source: string,
  target: string,
  signal: AbortSignal | undefined,
  onProgress: ((progress: StageProgress) => void) | undefined,
) => Promise<unknown>;

export interface ScratchCallOptions {
  signal?: AbortSignal | undefined;
  /** Told about each file copied, when this call makes the copy. */
  onProgress?: ((progress: StageProgress) => void) | undefined;
}

/** Whether the owner of a scratch directory runs, is gone, or cannot be checked from here. */
export type ScratchOwnerState = "alive" | "dead" | "unknown";

/**
 * Scratch copies of one cache object: one per source real path, made on first request, handed out again
 * after a check that it is still there, removed by {@link removeAll}.
 */
export class ScratchCopies {
  readonly #scratchDir: string;
  readonly #root: string;
  readonly #copy: CopyInto;
  readonly #flights = new SingleFlight<string>();
  /** Source real path → the scratch directory holding its copy. */
  readonly #made = new Map<string, string>();

  constructor(scratchDir: string, root: string, copy: CopyInto) {
    this.#scratchDir = scratchDir;
    this.#root = root;
    this.#copy = copy;
  }

  /**
   * The scratch copy of the directory whose real path is `sourceReal`: the one made earlier by this object
   * when it is still there (the same path every time; it is not refreshed when the source changed), else a
   * new one at a new path. Concurrent calls for one source share one copy (see `SingleFlight` for aborts).
   *
   * Each call marks the copy used (its mtime), which keeps a cleaner that cannot check the owner by its
   * process from taking it (see the module comment). Throws what the copy throws (the partial copy is
   * removed first), and a StageCacheError with the filesystem's code when no directory can be made under
   * the root.
   */
  get(sourceReal: string, options: ScratchCallOptions = {}): Promise<string> {
    return this.#flights.run(sourceReal, options.signal, async (signal) => {
      const made = this.#made.get(sourceReal);
      if (made !== undefined) {
        if (await markUsed(made)) return made;
        // Removed under us (by hand, or by a cleaner that could not tell that this process owns it).
        this.#made.delete(sourceReal);
      }
      const dir = await mkdtemp(join(this.#scratchDir, `${ownerTag()}-`)).catch((cause: unknown) => {
        throw cacheRootError(this.#root, cause);
      });
      try {
        await this.#copy(sourceReal, dir, signal, options.onProgress);
      } catch (error) {
        await removeTreeQuietly(dir);
        throw error;
      }
      this.#made.set(sourceReal, dir);
      return dir;
    });
  }

  /** Waits for copies in flight, then removes every copy this object made. Never throws. */
  async removeAll(): Promise<void> {
    await this.#flights.settled();
    for (const dir of this.#made.values()) await removeTreeQuietly(dir);
    this.#made.clear();
  }
}

/** Sets the directory's times to now; false when it is gone. */
async function markUsed(dir: string): Promise<boolean> {
  const now = new Date();
  try {
    await utimes(dir, now, now);
    return true;
  } catch (error) {
    const code = codeOf(error);
    if (code === "ENOENT" || code === "ENOTDIR") return false;
    throw error;
  }
}

/**
 * Whether the scratch directory `path` is debris a cleaner may remove now: a directory another cleaner was
 * removing (`.deleting`), or one whose owner is not known to run (gone, or not checkable from here) and
 * that was not used for `staleAfterMs`. A copy whose owner runs is never debris, however old.
 */
export async function isAbandonedScratch(
  path: string,
  staleAfterMs: number,
  now = Date.now(),
): Promise<boolean> {
  const name = basename(path);
  if (name.endsWith(DELETING_SUFFIX)) return true;
  if (scratchOwnerState(name) === "alive") return false;
  const stats = await lstat(path).catch(() => undefined);
  if (!stats) return false;
  return staleAfterMs === 0 || stats.mtimeMs <= now - staleAfterMs;
}

/**
 * Removes a scratch directory: first renamed to its `.deleting` name in one step, so that its owner, should
 * it still run, finds it gone (and makes a new copy) rather than half-deleted. Resolves false when it was
 * gone already. Throws the filesystem error of a failed removal.
 */
export async function removeScratch(path: string): Promise<boolean> {
  let doomed = path;
  if (!path.endsWith(DELETING_SUFFIX)) {
    doomed = path + DELETING_SUFFIX;
    try {
      await rename(path, doomed);
    } catch (error) {
      if (codeOf(error) === "ENOENT") return false;
      throw error;
    }
  }
  await removeTree(doomed);
  return true;
}

/** What a cleaner here can tell about the owner of the scratch directory called `name`. */
export function scratchOwnerState(name: string): ScratchOwnerState {
  const match = SCRATCH_NAME.exec(name);
  if (!match) return "unknown";
  const [, pid, start, kernel] = match;
  if (start === UNKNOWN || kernel === UNKNOWN || kernel !== identity().kernel) return "unknown";
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch (error) {
    return codeOf(error) === "ENOENT" ? "dead" : "unknown";
  }
  const fields = statFields(stat);
  if (!fields) return "unknown";
  // A zombie has exited; only its parent has yet to reap it.
  if (fields.state === "Z" || fields.state === "X") return "dead";
  return fields.startTime === start ? "alive" : "dead";
}

/** The `<pid>-<start>-<kernel>` prefix of this process's scratch directories. */
function ownerTag(): string {
  const { start, kernel } = identity();
  return `${process.pid}-${start}-${kernel}`;
}

let cachedIdentity: { start: string; kernel: string } | undefined;

/** This process's start time and kernel key (see the module comment), or `x` for what cannot be known. */
function identity(): { start: string; kernel: string } {
  if (cachedIdentity) return cachedIdentity;
  let start = UNKNOWN;
  let kernel = UNKNOWN;
  if (process.platform === "linux") {
    try {
      start = statFields(readFileSync(`/proc/${process.pid}/stat`, "utf8"))?.startTime ?? UNKNOWN;
      const bootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
      const pidNamespace = readlinkSync("/proc/self/ns/pid");
      kernel = createHash("sha256").update(`${bootId}\n${pidNamespace}`).digest("hex").slice(0, 8);
    } catch {
      start = UNKNOWN;
      kernel = UNKNOWN;
    }
  }
  cachedIdentity = { start, kernel };
  return cachedIdentity;
}

/**
 * State (field 3) and start time (field 22) of a `/proc/<pid>/stat` line, whose field 2 may hold spaces;
 * undefined for a line without both, or with a start time that is not a decimal number. Exported for tests.
 */
export function statFields(stat: string): { state: string; startTime: string } | undefined {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const state = fields[0];
  const startTime = fields[19];
  if (!state || !startTime || !/^\d+$/.test(startTime)) return undefined;
  return { state, startTime };
}
