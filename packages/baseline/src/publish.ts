import { join } from "node:path";
import { MANIFEST, slotPath } from "./layout.js";
import { writeManifest } from "./manifest.js";
import { encodeSlotRecord } from "./slot-record.js";
import { openStore, prepareStore, storeError } from "./store.js";
import type { WrittenTree } from "./write-tree.js";

export interface PublishSlotOptions {
  cacheRoot: string;
  commit: string;
  /**
   * Writes the commit's tree into the empty directory `target` (with the `.git` marker) and resolves to
   * what it wrote: the counts go into the sentinel, the index into the manifest.
   */
  writeTree: (target: string, signal: AbortSignal | undefined) => Promise<WrittenTree>;
  signal?: AbortSignal | undefined;
  onWarning?: ((message: string, path: string) => void) | undefined;
}

/**
 * Returns the slot of `commit` holding its whole tree: a hit (the sentinel touched, nothing written, so a
 * read-only cache still serves its slots), or built now and published whole by `EntryStore.publish`, or
 * adopted from a concurrent builder. The build writes the tree, then the manifest into the `.git` marker,
 * and the store writes the sentinel last (see slot-record.ts for what it records).
 *
 * A slot without a sentinel (written by 0.1.0, or by a foreign tool) is incomplete: it is moved aside
 * before building, so it is rebuilt once.
 *
 * Throws what `writeTree` throws, `signal.reason` on abort, and {@link BaselineError} with the filesystem's
 * code for a cache directory that cannot be created or written (the message says to pass a writable one or
 * set `CAS_STAGE_CACHE_DIR`), or `EAGAIN` when the slot kept being evicted. Nothing is left behind.
 */
export async function publishSlot(
  options: PublishSlotOptions,
): Promise<{ dir: string; outcome: "hit" | "built" | "adopted" }> {
  const { cacheRoot, commit, signal } = options;
  const store = openStore(cacheRoot, { onWarning: options.onWarning });
  const slot = slotPath(cacheRoot, commit);
  try {
    if (await store.touch(slot)) return { dir: slot, outcome: "hit" };
  } catch (error) {
    throw storeError(cacheRoot, error);
  }
  await prepareStore(store, cacheRoot);
  try {
    if ((await store.inspect(slot)).state === "incomplete") await store.makeWay(slot, signal);
    const { outcome } = await store.publish(slot, {
      tmpPrefix: "baseline staging",
      signal,
      build: async (staging, context) => {
        const { files, bytes, index } = await options.writeTree(staging, context.signal);
        await writeManifest(join(staging, MANIFEST), commit, index);
        return encodeSlotRecord({ commit, files, bytes });
      },
    });
    return { dir: slot, outcome };
  } catch (error) {
    if (signal?.aborted && error === signal.reason) throw error;
    throw storeError(cacheRoot, error);
  }
}
