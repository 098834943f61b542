import { lstat, mkdir, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { codeOf } from "./errors.js";

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

/**
 * `mkdir -p`: makes `path` and any missing parents; an existing directory is fine. Unlike Node's
 * `mkdir(path, { recursive: true })`, which reports a read-only filesystem (`EROFS`) below an existing
 * directory as `ENOENT`, it throws the error of the `mkdir` that failed, with its real `code` (`EROFS`,
 * `EACCES`, `ENOSPC`, `ENOTDIR`, …), and `EEXIST` when something other than a directory is in the way. A
 * directory removed by another process between its `mkdir` and the check that it exists is made again.
 */
export async function makeDirectory(path: string): Promise<void> {
  if (await makeOne(path)) return;
  if (dirname(path) === path)
    throw Object.assign(new Error(`ENOENT: no root directory ${path}`), { code: "ENOENT" });
  await makeDirectory(dirname(path));
  if (!(await makeOne(path))) {
    throw Object.assign(new Error(`ENOENT: no such file or directory, mkdir '${path}'`), {
      code: "ENOENT",
      syscall: "mkdir",
      path,
    });
  }
}

/** Attempts at making one directory that other processes keep removing. */
const MAX_MKDIR_ATTEMPTS = 8;

/**
 * Makes the directory `path` unless it is one already; false when its parent is missing. Throws `mkdir`'s
 * other errors, and `EEXIST` when something else is at `path`.
 */
async function makeOne(path: string): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      await mkdir(path);
      return true;
    } catch (error) {
      const code = codeOf(error);
      if (code === "ENOENT") return false;
      if (code !== "EEXIST") throw error;
      const found = await lstat(path).catch(() => undefined);
      if (found?.isDirectory()) return true;
      // Removed between the mkdir and the look: make it again.
      if (found !== undefined || attempt >= MAX_MKDIR_ATTEMPTS) throw error;
    }
  }
}
