import { slotPath } from "./layout.js";
import { openStore, storeError } from "./store.js";

/**
 * A hit: the slot of `commit` when it holds a complete tree, its sentinel touched (nothing written, so a
 * read-only cache still serves its slots); undefined on a miss. Throws {@link BaselineError} for a slot this
 * user cannot read (see `EntryStore.touch`).
 */
export async function hitSlot(
  cacheRoot: string,
  commit: string,
  onWarning?: (message: string, path: string) => void,
): Promise<string | undefined> {
  const slot = slotPath(cacheRoot, commit);
  try {
    return (await openStore(cacheRoot, { onWarning }).touch(slot)) ? slot : undefined;
  } catch (error) {
    throw storeError(cacheRoot, error);
  }
}
