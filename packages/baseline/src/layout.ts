import { join } from "node:path";

/** Every path of the baseline cache, in one place. */

/** The directory holding every baseline slot: `<cacheRoot>/baselines`. */
export function baselinesDir(cacheRoot: string): string {
  return join(cacheRoot, "baselines");
}

/** The slot of one commit: `<cacheRoot>/baselines/<full commit SHA>`. */
export function slotPath(cacheRoot: string, commit: string): string {
  return join(baselinesDir(cacheRoot), commit);
}

/** A slot's name is a full commit SHA: 40 hex digits (SHA-1) or 64 (SHA-256). */
export function isSlotName(name: string): boolean {
  return /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(name);
}

/**
 * Where a slot goes while it is deleted: `<commit>.trash.<16 hex>`, beside it. Renaming to it is one step,
 * so a slot is whole or gone, never half-deleted. Deliberately unlike a `cas` temp name
 * (`<name>.tmp.XXXXXX`), so `sweepStaleTemps` and this package never mistake one for the other.
 */
export function trashPathFor(cacheRoot: string, commit: string): string {
  // The global Web Crypto: importing node:crypto would cost every cache hit its load time.
  const random = Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(8))).toString("hex");
  return join(baselinesDir(cacheRoot), `${commit}.trash.${random}`);
}

/** Whether a name in the baselines directory is a trash dir left by an interrupted prune. */
export function isTrashName(name: string): boolean {
  return /^(?:[0-9a-f]{40}|[0-9a-f]{64})\.trash\.[0-9a-f]{16}$/.test(name);
}

/** Prefix of the fresh temp dir of an uncached baseline, under the OS temp dir. */
export const TEMP_BASELINE_PREFIX = "cas-baseline-";

/** Prefix of the throwaway repository that receives a base fetched from origin, under the OS temp dir. */
export const FETCH_REPO_PREFIX = "cas-baseline-fetch-";
