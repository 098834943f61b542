import { join } from "node:path";
import { isDirectory } from "./directory.js";
import { GitAdapter, isObjectId } from "./git.js";
import { hitSlot } from "./hit.js";
import { slotPath } from "./layout.js";
import { locateRepo } from "./repo.js";
import { resolveBase } from "./resolve.js";

export interface MaterializeOptions {
  /** A directory (or file) inside a git working tree. */
  path: string;
  /** Explicit revision; otherwise the auto-detection ladder picks the merge-base. */
  base?: string;
  /** Persistent reuse under `<cacheRoot>/baselines/<commit>`; created when missing. */
  cacheRoot?: string;
  /** Called with the tree path of each submodule, which is skipped. Default: `process.emitWarning`. */
  onSubmodule?: (path: string) => void;
  /** Aborts the work; the promise rejects with `signal.reason` and nothing is left behind. */
  signal?: AbortSignal;
  /**
   * Addition to the API of the issue: called after each file or symlink is written, with the count so far
   * and the total. Not called on a cache hit.
   */
  onProgress?: (written: number, total: number) => void;
  /** Receives what the cache did on its own (an incomplete slot moved aside, an interrupted eviction repaired). */
  onWarning?: (message: string, path: string) => void;
}

export interface BaselineResult {
  /** Root of the materialized tree. */
  dir: string;
  /** Where `path` maps inside `dir`. */
  pathOrig: string;
  /** Full SHA of the baseline commit. */
  commit: string;
  /**
   * git's abbreviation of `commit` in the user's repository (`git rev-parse --short`: 7 hex digits or more,
   * as `core.abbrev` and the repository's size ask).
   */
  rev: string;
  /**
   * How it was picked: `explicit base <base>`, `explicit base <base> (via origin/<base>)`, `explicit base
   * <base> (fetched from origin)`, or `merge-base with <ref>` (`@{u}`, `origin/HEAD`, `origin/main`,
   * `origin/master`).
   */
  source: string;
  /** True when `dir` is a cache slot, which the caller must not delete or modify. */
  persistent: boolean;
  /** `hit`: the slot existed; `built`: this call made it; `adopted`: a concurrent call made it; `temp`: no cache. */
  cache: "hit" | "built" | "adopted" | "temp";
}

/**
 * Materializes the baseline tree of the repository holding `options.path` and says where `path` maps in it.
 *
 * The commit: `base` when given (locally, then as `origin/<base>`, then fetched from `origin` into a
 * throwaway repository), otherwise the merge-base of HEAD with the upstream, origin/HEAD, origin/main or
 * origin/master, the first that resolves. The user's repository is never changed: no ref, object, config,
 * index or working-tree change.
 *
 * The tree holds the exact blob bytes, executable bits and symlinks of the commit, no submodules, and an
 * empty `.git` marker directory at its root (in a cache slot, it holds the cache's sentinel and manifest).
 *
 * With `cacheRoot`, the tree lives in the slot `<cacheRoot>/baselines/<commit>`, marked complete by a
 * sentinel in its `.git` marker: a complete slot is returned at once (`hit`, its sentinel touched, so
 * pruning is least-recently-used); otherwise it is built in `baselines/.staging`, with its manifest and,
 * last, its sentinel, and renamed into place whole (`cas`'s `EntryStore`), so a reader never sees a partial
 * slot, and of concurrent builders exactly one reports `built`, the others `adopted`. A returned slot stays
 * whole and in place until it goes unused for as long as pruning allows. Without `cacheRoot` the tree goes
 * to a fresh temp dir under the OS temp dir that the caller removes (`persistent: false`).
 *
 * Throws {@link BaselineError} with `code` `ENOPATH`, `ENOTGITREPO`, `EOUTSIDEREPO` (all before any
 * expensive work), `ENOCOMMITS`, `ENOBASE`, `ESHALLOW`, `EUNKNOWNBASE`, `EBADTREE`, `EGIT`, the
 * filesystem's code for a refused write (`ENOSPC`, `EACCES`, …; for a cache dir that cannot be created or
 * written the message says to pass a writable one or set `CAS_STAGE_CACHE_DIR`), `EAGAIN` when concurrent
 * pruning kept evicting the slot; `signal.reason` when aborted. On failure nothing is left behind: no temp
 * dir, no staging dir, no throwaway repository.
 */
export async function materializeBaseline(options: MaterializeOptions): Promise<BaselineResult> {
  const { signal } = options;
  signal?.throwIfAborted();
  // A build is certain when there is no cache, or when the base is a commit id whose slot is missing:
  // then the build's code loads while git runs. Otherwise it loads only on a miss: a hit never pays.
  const building = buildIsCertain(options) ? import("./build.js") : undefined;
  building?.catch(() => {});
  // One git process locates the repository and resolves the base (or HEAD for the ladder); without a
  // base, the first rung of the ladder runs beside it, so a cache hit waits for one git process.
  const location = await locateRepo(options.path, signal, {
    verify: options.base ?? "HEAD",
    upstream: options.base === undefined,
  });
  const resolved = await resolveBase(location, options.base, signal);
  try {
    const { commit } = resolved;
    // git abbreviates the commit while the slot is looked up or built; the locate usually started that
    // already, for the commit it expected (the merge-base, or the explicit base).
    const abbreviation = (location.abbreviation ?? Promise.resolve(undefined))
      .catch(() => undefined)
      .then((early) =>
        early !== undefined && commit.startsWith(early)
          ? early
          : new GitAdapter(location.root, signal).abbreviate(commit, resolved.objectDirs.slice(1)),
      );
    abbreviation.catch(() => {});
    const described = async () => ({ commit, rev: await abbreviation, source: resolved.source });
    const located = (dir: string) => ({ dir, pathOrig: join(dir, location.relativePath) });

    if (options.cacheRoot !== undefined) {
      // A hit touches the slot's sentinel: that marks it used (pruning is least recently used) and proves
      // it complete; a slot being pruned is a miss.
      const hit = await hitSlot(options.cacheRoot, commit, options.onWarning);
      if (hit !== undefined)
        return { ...located(hit), ...(await described()), persistent: true, cache: "hit" };
    }
    const { buildBaseline } = await (building ?? import("./build.js"));
    const built = await buildBaseline({
      location,
      resolved,
      cacheRoot: options.cacheRoot,
      onSubmodule: options.onSubmodule ?? warnAboutSubmodule,
      onProgress: options.onProgress,
      onWarning: options.onWarning,
      signal,
    });
    return {
      ...located(built.dir),
      ...(await described()),
      persistent: options.cacheRoot !== undefined,
      cache: built.cache,
    };
  } finally {
    await resolved.release();
  }
}

/** Whether a call will build, as far as can be told before git runs. */
function buildIsCertain(options: MaterializeOptions): boolean {
  if (options.cacheRoot === undefined) return true;
  const base = options.base?.toLowerCase();
  return isObjectId(base) && !isDirectory(slotPath(options.cacheRoot, base));
}

function warnAboutSubmodule(path: string): void {
  process.emitWarning(`submodule ${path} is not materialized in the baseline`, {
    type: "CasBaselineWarning",
    code: "CAS_BASELINE_SUBMODULE",
  });
}
