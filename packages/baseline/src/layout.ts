import { join } from "node:path";

/**
 * Every path of the baseline cache, in one place:
 *
 * ```
 * <cacheRoot>/baselines/
 *   <commit>/                              a slot: the commit's tree
 *     .git/                                the marker directory every baseline has
 *       cas-baseline.complete              the sentinel: the slot is complete; its mtime is the last use
 *       cas-baseline.evicting              the sentinel under the name an evictor gives it (the claim)
 *       cas-baseline.manifest              what the build wrote: path, mode, blob id of every entry
 *   .staging/<commit>.tmp.XXXXXX           a build in progress (or of a process that died)
 *   .trash/<commit>.<time>.<hex>           a slot on its way out (`.deleting` once someone deletes it)
 * ```
 *
 * The sentinel, the claim and the manifest live inside the `.git` marker because everything that compares
 * a baseline with a live checkout must already leave `.git` out (the live one holds the repository), so
 * they are never seen as a difference; a file at the slot's root would be. The staging and trash
 * directories start with a dot, so no commit name can collide with them.
 *
 * Version 0.1.0 left other names, read here only to clean them up: slots without a sentinel (incomplete
 * now, moved aside and rebuilt once), `<commit>.tmp.XXXXXX` temp dirs and `<commit>.trash.<16 hex>` trash
 * beside the slots.
 */

/** The directory holding every baseline slot: `<cacheRoot>/baselines`. */
export function baselinesDir(cacheRoot: string): string {
  return join(cacheRoot, "baselines");
}

/** The slot of one commit: `<cacheRoot>/baselines/<full commit SHA>`. */
export function slotPath(cacheRoot: string, commit: string): string {
  return join(baselinesDir(cacheRoot), commit);
}

/** Where builds make their temp dirs: `<cacheRoot>/baselines/.staging`, on the slots' filesystem. */
export function stagingDir(cacheRoot: string): string {
  return join(baselinesDir(cacheRoot), ".staging");
}

/** Where slots go on their way out: `<cacheRoot>/baselines/.trash`, on the slots' filesystem. */
export function trashDir(cacheRoot: string): string {
  return join(baselinesDir(cacheRoot), ".trash");
}

/** A slot's name is a full commit SHA: 40 hex digits (SHA-1) or 64 (SHA-256). */
export function isSlotName(name: string): boolean {
  return /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(name);
}

/** The marker directory at the root of every baseline tree. */
export const MARKER_DIR = ".git";

/** The sentinel, relative to a slot. Written last by the build; its presence means the slot is whole. */
export const SENTINEL = `${MARKER_DIR}/cas-baseline.complete`;

/** The claim, relative to a slot: the sentinel renamed by an evictor (same directory, as it must be). */
export const CLAIM = `${MARKER_DIR}/cas-baseline.evicting`;

/** The manifest, relative to a slot: every entry the build wrote (see manifest.ts). */
export const MANIFEST = `${MARKER_DIR}/cas-baseline.manifest`;

/** Whether a name beside the slots is trash left by a 0.1.0 prune: `<commit>.trash.<16 hex>`. */
export function isLegacyTrashName(name: string): boolean {
  return /^(?:[0-9a-f]{40}|[0-9a-f]{64})\.trash\.[0-9a-f]{16}$/.test(name);
}

/** Prefix of the fresh temp dir of an uncached baseline, under the OS temp dir. */
export const TEMP_BASELINE_PREFIX = "cas-baseline-";

/** Prefix of the throwaway repository that receives a base fetched from origin, under the OS temp dir. */
export const FETCH_REPO_PREFIX = "cas-baseline-fetch-";
