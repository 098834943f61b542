import { asStageCacheError } from "./errors.js";
import { assertFingerprint, Layout } from "./layout.js";

/**
 * The hit of `StageCache.stage(source, fingerprint)` without opening the cache: the slot of `fingerprint`
 * under the absolute root `root` when it is complete, its sentinel touched (so eviction sees the use), as
 * `stage` would return it; undefined on a miss, which the caller then stages through `StageCache`. It runs
 * the same `EntryStore.touch` on the same slot with the same sentinel and claim as `StageCache`, and, like a
 * hit there, never looks at the source. Unlike `StageCache.open`, it creates nothing and removes no debris
 * (a miss does that), so it serves a read-only cache too, and it loads none of the copying code: it is the
 * start-up path of `cas-stage-cache stage` on a hit.
 *
 * Throws TypeError for an invalid fingerprint; `StageCacheError` `EACCES` for an entry of another user this
 * one cannot read (see `EntryStore.touch`).
 */
export async function hitEntry(
  root: string,
  fingerprint: string,
  onWarning: (message: string, path: string) => void,
): Promise<string | undefined> {
  assertFingerprint(fingerprint);
  const layout = new Layout(root);
  const store = layout.entryStore({ onWarning });
  const slot = layout.slotPath(fingerprint);
  try {
    return (await store.touch(slot)) ? slot : undefined;
  } catch (error) {
    throw asStageCacheError(error, slot);
  }
}
