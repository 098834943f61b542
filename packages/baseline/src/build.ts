import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StageError, stage } from "@cas-stage/cas";
import { isDirectory, touchDirectory } from "./directory.js";
import { BaselineError, messageOf } from "./errors.js";
import { baselinesDir, slotPath, TEMP_BASELINE_PREFIX } from "./layout.js";
import { isPartialClone } from "./promisor-pack.js";
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
  signal: AbortSignal | undefined;
}

/** The hint for every failure to write the cache directory itself (the same words stage-cache uses). */
const CACHE_DIR_HINT = "pass a writable cache dir or set CAS_STAGE_CACHE_DIR";

/**
 * Builds the baseline tree: into the slot `<cacheRoot>/baselines/<commit>` through `cas.stage` (so a
 * reader sees the whole slot or none, and of concurrent builders one reports `built`, the others
 * `adopted`), or without a cache root into a fresh temp dir. Loaded only on a cache miss.
 *
 * Throws what {@link writeTree} throws; {@link BaselineError} with the filesystem's code and
 * {@link CACHE_DIR_HINT} when the cache directory cannot be created or written; `StageError` when the slot
 * cannot be finalized; `signal.reason` when aborted. Leaves nothing behind on failure.
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
      throw cacheDirError(tmpdir(), error, "the OS temp dir");
    });
    try {
      await build(dir, signal);
    } catch (error) {
      await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
      throw error;
    }
    return { dir, cache: "temp" };
  }

  const slot = slotPath(cacheRoot, resolved.commit);
  const parent = baselinesDir(cacheRoot);
  await mkdir(parent, { recursive: true }).catch((error: unknown) => {
    throw cacheDirError(parent, error, "the cache dir");
  });
  try {
    const { adopted } = await stage({
      parent,
      final: slot,
      tmpPrefix: "baseline staging",
      finalizePrefix: "baseline finalize",
      build: async (staging, context) => {
        await build(staging, context.signal);
        // The slot's mtime is its last use: make it the moment of publication, not of the first mkdir.
        touchDirectory(staging);
      },
      // The slot only ever appears by a whole-tree rename, so a directory there is complete.
      adopt: () => isDirectory(slot),
      ...(signal ? { signal } : {}),
    });
    return { dir: slot, cache: adopted ? "adopted" : "built" };
  } catch (error) {
    if (error instanceof StageError && error.phase === "tmp")
      throw cacheDirError(parent, error.cause, "the cache dir");
    throw error;
  }
}

function cacheDirError(dir: string, error: unknown, what: string): BaselineError {
  const code = (error as { code?: unknown } | null)?.code;
  return new BaselineError(
    typeof code === "string" ? code : "EWRITE",
    `cannot write ${what} ${dir}: ${messageOf(error)}; ${CACHE_DIR_HINT}`,
    { cause: error },
  );
}
