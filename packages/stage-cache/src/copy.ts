import { mkdirSync } from "node:fs";
import { type BytePath, bytePathOfText, fsPath, joinPath } from "./byte-path.js";
import { COPIED_MODE_BITS, copyFileContent } from "./file-copy.js";
import { targetError } from "./fs-errors.js";
import { type ManifestEntry, sortEntries, treeDigest } from "./manifest.js";
import type { CopyRecord } from "./sentinel.js";
import { type WalkOptions, walkTree } from "./walk.js";
import { runningPool } from "./worker-pool-slot.js";

/** Progress of one copy: what has been copied so far. Reported after each file. */
export interface StageProgress {
  files: number;
  bytes: number;
}

export interface CopyOptions extends WalkOptions {
  onProgress?: (progress: StageProgress) => void;
  /**
   * Not part of the package's API: after how many files the copy starts the worker threads it shares the
   * work with (see `CopyWorkers`), when no earlier copy in this process started them; once they run, a copy
   * shares its work from its first file. Default {@link START_WORKERS_AFTER}; 1 starts them at once,
   * Infinity never uses them (all on this thread).
   */
  startWorkersAfter?: number;
}

/**
 * A copy starts worker threads once it has seen this many files. Measured on 2 cores (tmpfs, cold
 * processes, as the CLI runs): a worker costs about 100 ms before it pays (its start, and its code running
 * slowly until compiled) and the kernel serializes much of two threads' file creation, so starting one at
 * the 1,000th file made copies of 5,000 files about 40% slower and of 10,000 files about 5% slower, and
 * copies of 50,000 files 20% faster. Once the workers run (and are warm), later copies in the process
 * share their work from their first file.
 */
export const START_WORKERS_AFTER = 10_000;

/**
 * Copies what {@link walkTree} yields from `source` into `target` (an existing, empty directory): each
 * directory as it is found, then every file with its exact bytes, its holes, and its permission bits
 * without setuid, setgid and sticky (as `cp` without `-p`). Names are copied as bytes. Each file is read
 * once, from the descriptor the walk opened, and the bytes read are hashed as they are written.
 *
 * Resolves to the {@link CopyRecord}: the manifest of what was written (every directory, every file's
 * permission bits, size and content hash) and its digest, which is `fingerprintTree` of the source as the
 * copy saw it.
 *
 * Directories are created with the default mode, so the copy stays writable even when a source directory
 * is not.
 *
 * Throws {@link StageCacheError} with the filesystem's code: for a source file that cannot be read (for
 * example `EACCES`), naming it and what to do; for a directory or file that cannot be created in `target`
 * (`ENOSPC` when the filesystem is out of space or inodes, `ENAMETOOLONG`…), naming it and what to do;
 * `ESOURCECHANGED` or `ENOENT` when the source changes under the walk; `signal.reason` on abort. The
 * caller owns `target` and removes it on failure; when this rejects, no copy is still running.
 */
export async function copyTree(
  source: string,
  target: string,
  options: CopyOptions = {},
): Promise<CopyRecord> {
  const { onProgress, signal } = options;
  const targetRoot = bytePathOfText(target);
  const entries: ManifestEntry[] = [];
  let files = 0;
  let bytes = 0;
  const startWorkersAfter = options.startWorkersAfter ?? START_WORKERS_AFTER;
  let workers = startWorkersAfter === Number.POSITIVE_INFINITY ? undefined : runningPool.current;
  let seen = 0;
  let walking = true;
  // The pool's code is loaded only when a copy proves large; files are copied here meanwhile.
  const startWorkers = () => {
    import("./copy-workers.js").then(
      (loaded) => {
        if (walking) workers ??= loaded.CopyWorkers.shared();
      },
      () => {
        // The module cannot load (a bundle without it): every file is copied on this thread.
      },
    );
  };
  try {
    await walkTree(
      source,
      {
        action: "copy",
        idle: () => workers?.help() ?? false,
        dir: (rel) => {
          makeDirectory(joinPath(targetRoot, rel));
          entries.push({ kind: "dir", rel });
        },
        file: (file, done) => {
          const copied: Parameters<typeof copyFileContent>[3] = (error, content) => {
            if (error !== undefined || content === undefined) return done(error);
            const mode = file.stats.mode & COPIED_MODE_BITS;
            entries.push({ kind: "file", rel: file.rel, mode, size: content.size, hash: content.hash });
            files++;
            bytes += content.size;
            try {
              onProgress?.({ files, bytes });
            } catch (progressError) {
              return done(progressError);
            }
            done();
          };
          seen++;
          if (seen === startWorkersAfter && workers === undefined) startWorkers();
          if (workers?.offer(file, targetRoot, file.rel, copied)) return;
          copyFileContent(file, joinPath(targetRoot, file.rel), signal, copied);
        },
      },
      options,
    );
  } finally {
    walking = false;
  }
  sortEntries(entries);
  return { files, bytes, entries, digest: treeDigest(entries) };
}

function makeDirectory(path: BytePath): void {
  try {
    mkdirSync(fsPath(path));
  } catch (cause) {
    throw targetError(path, cause);
  }
}
