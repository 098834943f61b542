import { constants, copyFile, mkdirSync } from "node:fs";
import { join } from "node:path";
import { codeOf, messageOf, StageCacheError } from "./errors.js";
import { type WalkOptions, walkTree } from "./walk.js";

/** Progress of one copy: what has been copied so far. Reported after each file. */
export interface StageProgress {
  files: number;
  bytes: number;
}

export interface CopyOptions extends WalkOptions {
  onProgress?: (progress: StageProgress) => void;
}

/** What a copy wrote: the number of regular files and the sum of their sizes. */
export interface CopySummary {
  files: number;
  bytes: number;
}

/** Never overwrite (the target is fresh); clone where the filesystem can (btrfs, XFS, APFS), else copy. */
const COPY_FLAGS = constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE;

/**
 * Copies what {@link walkTree} yields from `source` into `target` (an existing, empty directory): each
 * directory as it is found, then every file with its exact bytes and permission bits. `copyFile` uses
 * `copy_file_range` (or a reflink where the filesystem offers one) and never overwrites.
 *
 * Directories are created with the default mode, so the copy stays writable even when a source directory
 * is not.
 *
 * Throws {@link StageCacheError} with the filesystem's code (for example `EACCES` for an unreadable file),
 * naming the file and what to do; `signal.reason` on abort. The caller owns `target` and removes it on
 * failure; when this rejects, no copy is still running.
 */
export async function copyTree(
  source: string,
  target: string,
  options: CopyOptions = {},
): Promise<CopySummary> {
  const { onProgress } = options;
  const summary: CopySummary = { files: 0, bytes: 0 };
  await walkTree(
    source,
    {
      dir: (rel) => mkdirSync(join(target, rel)),
      file: (file, done) => {
        copyFile(file.from, join(target, file.rel), COPY_FLAGS, (cause) => {
          if (cause) return done(copyError(file.from, cause));
          summary.files++;
          summary.bytes += file.size;
          try {
            onProgress?.({ files: summary.files, bytes: summary.bytes });
          } catch (error) {
            return done(error);
          }
          done();
        });
      },
    },
    options,
  );
  return summary;
}

function copyError(path: string, cause: unknown): StageCacheError {
  const code = codeOf(cause) ?? "EIO";
  const hint =
    code === "EACCES" || code === "EPERM"
      ? "make the file readable, or move it into a dot-directory or node_modules (which are not copied)"
      : code === "ENOENT"
        ? "it disappeared while being copied: the source changed during the stage; retry once it is stable"
        : "check the file and the cache directory, then retry";
  return new StageCacheError(code, `cannot copy ${path}: ${messageOf(cause)}; ${hint}`, { path, cause });
}
