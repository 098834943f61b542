import { readdir } from "node:fs/promises";
import { join } from "node:path";

/**
 * Whether any of `objectDirs` belongs to a partial clone: one that holds a `.promisor` pack, as every
 * `git clone --filter=…` does (its first pack is one). Read from the directories, without git.
 */
export async function isPartialClone(objectDirs: readonly string[]): Promise<boolean> {
  const found = await Promise.all(
    objectDirs.map(async (dir) => {
      const names = await readdir(join(dir, "pack")).catch(() => [] as string[]);
      return names.some((name) => name.endsWith(".promisor"));
    }),
  );
  return found.includes(true);
}
