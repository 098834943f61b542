import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BaselineError, messageOf } from "./errors.js";
import { TEMP_BASELINE_PREFIX } from "./layout.js";
import { isPartialClone } from "./promisor-pack.js";
import { publishSlot } from "./publish.js";
import type { RepoLocation } from "./repo.js";
import type { ResolvedBase } from "./resolve.js";
import { writeTree } from "./write-tree.js";

/** What a build needs: the repository, the commit and where its objects are, and the caller's hooks. */
export interface BuildRequest {
  location: RepoLocation;
  resolved: ResolvedBase;
  cacheRoot: string | undefined;
  onSubmodule: (path: string) => void;
  onProgress: ((written: number, total: number) => void) | undefined;
  onWarning: ((message: string, path: string) => void) | undefined;
  signal: AbortSignal | undefined;
}

/**
 * Builds the baseline tree: into the slot `<cacheRoot>/baselines/<commit>` through the cache's
 * `EntryStore` (`publish.ts`: a reader sees the whole slot or none, and of concurrent builders one reports
 * `built`, the others `adopted`; a slot another process finished meanwhile counts as adopted), or without
 * a cache root into a fresh temp dir. Loaded only on a cache miss.
 *
 * Throws what {@link writeTree} throws; {@link BaselineError} with the filesystem's code when the cache
 * directory (saying to pass a writable one or set `CAS_STAGE_CACHE_DIR`) or, without a cache, the OS temp
 * dir (saying to set `TMPDIR`) cannot be written; `signal.reason` when aborted. Leaves nothing behind.
 */
export async function buildBaseline(
  request: BuildRequest,
): Promise<{ dir: string; cache: "built" | "adopted" | "temp" }> {
  const { location, resolved, cacheRoot, signal } = request;
  // The partial-clone machinery (and the fetch code it brings) is loaded only for a partial clone.
  const partial = (await isPartialClone(resolved.objectDirs))
    ? (await import("./partial-clone.js")).partialCloneFetcher(location, signal)
    : undefined;
  const build = (target: string, buildSignal: AbortSignal | undefined) =>
    writeTree({ commit: resolved.commit, objectDirs: resolved.objectDirs, partial }, target, {
      onSubmodule: request.onSubmodule,
      onProgress: request.onProgress,
      signal: buildSignal,
    });

  if (cacheRoot === undefined) {
    const dir = await mkdtemp(join(tmpdir(), TEMP_BASELINE_PREFIX)).catch((error: unknown) => {
      throw tempDirError(tmpdir(), error);
    });
    try {
      await build(dir, signal);
    } catch (error) {
      await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
      throw error;
    }
    return { dir, cache: "temp" };
  }

  const { dir, outcome } = await publishSlot({
    cacheRoot,
    commit: resolved.commit,
    writeTree: build,
    signal,
    onWarning: request.onWarning,
  });
  return { dir, cache: outcome === "hit" ? "adopted" : outcome };
}

function tempDirError(dir: string, error: unknown): BaselineError {
  const code = (error as { code?: unknown } | null)?.code;
  return new BaselineError(
    typeof code === "string" ? code : "EWRITE",
    `cannot write the OS temp dir ${dir}: ${messageOf(error)}; set TMPDIR to a writable directory, or pass a cache dir`,
    { path: dir, cause: error },
  );
}
