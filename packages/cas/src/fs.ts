import { lstat, rm } from "node:fs/promises";

/**
 * Removes a directory tree (or a file) and everything below it; a missing path is not an error. Retries a
 * few times on `EBUSY`/`ENOTEMPTY`/`EPERM`, which a concurrent writer or Windows' file locks cause briefly.
 * Throws the filesystem error (with its `code`) when the tree cannot be removed.
 */
export async function removeTree(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * {@link removeTree}, ignoring its failure: for cleanup on a path that already failed, where the error that
 * made us clean up is the one worth reporting. Never throws.
 */
export async function removeTreeQuietly(path: string): Promise<void> {
  await removeTree(path).catch(() => {});
}

/** Whether anything (a file, a directory, a symlink, even a dangling one) exists at `path`. Never throws. */
export async function pathExists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}
