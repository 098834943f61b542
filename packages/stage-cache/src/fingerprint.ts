import type { StageProgress } from "./copy.js";
import { ContentPass, runPass } from "./file-content.js";
import { type ManifestEntry, sortEntries, treeDigest } from "./manifest.js";
import { type WalkOptions, walkTree } from "./walk.js";

/** Options of {@link fingerprintTree}. */
export interface FingerprintOptions {
  /** As for the cache: hash files behind symlinks that resolve outside the source. Default false (skip). */
  followExternalSymlinks?: boolean;
  /** Aborting stops the walk and rejects the call with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * Called after each file is hashed, with the files and bytes hashed so far (counted as a copy counts
   * them: regular files and their sizes). The last call carries the tree's totals, which are what a copy
   * of the same, unchanged tree reports in its last `onProgress` call; a tree without files gets no call.
   * Called often: keep it cheap.
   */
  onProgress?: (progress: StageProgress) => void;
}

/**
 * A lowercase sha256 hex digest of exactly the tree that `StageCache.stage` would copy from `source`
 * (the same walk, so the two cannot disagree): every directory's relative path, and for every file its
 * relative path, whether it is executable by its owner, its size and its content. Format
 * `cas-stage-tree-v2` (see `manifest.ts`; version 1, before 0.2, hashed contents whole and sorted paths
 * as UTF-16, so digests changed). Not hashed: mtimes, owners, other permission bits, and the source's own
 * path. Identical trees in different places hence get the same digest, and any change to a copied file,
 * or any added, removed or renamed one, changes it. Names that are not UTF-8 are hashed as their bytes.
 * The digest equals the one a copy of the same tree records in its slot's sentinel.
 *
 * Each file is read once, from the descriptor the walk opened, in 1 MiB steps, so memory stays bounded;
 * content chunks of zeros are compared rather than hashed, so a sparse file hashes at the speed its holes
 * read. Large files give the event loop a turn every few milliseconds.
 *
 * Throws {@link StageCacheError}: `ENOENT` for a missing source, `ENOTDIR` for one that is not a directory,
 * the filesystem's code (e.g. `EACCES`) for a file that cannot be read, `ESOURCECHANGED` or `ENOENT` when
 * the source changes under the walk; `signal.reason` when aborted. Writes nothing, whatever happens.
 */
export async function fingerprintTree(source: string, options: FingerprintOptions = {}): Promise<string> {
  const walkOptions: DigestOptions = { followExternalSymlinks: options.followExternalSymlinks ?? false };
  if (options.signal) walkOptions.signal = options.signal;
  if (options.onProgress) walkOptions.onProgress = options.onProgress;
  return digestTree(source, walkOptions);
}

/** Every walk option, the test hooks included, and progress. */
type DigestOptions = WalkOptions & Pick<FingerprintOptions, "onProgress">;

/** {@link fingerprintTree} with every walk option, the test hooks included. Not part of the package's API. */
export async function digestTree(source: string, options: DigestOptions = {}): Promise<string> {
  const entries: ManifestEntry[] = [];
  const hashed: StageProgress = { files: 0, bytes: 0 };
  await walkTree(
    source,
    {
      action: "hash",
      dir: (rel) => {
        entries.push({ kind: "dir", rel });
      },
      file: (file, done) => {
        const pass = new ContentPass(file, "hash");
        runPass(pass, options.signal, (error) => {
          if (error !== undefined) return done(error);
          const { size, hash } = pass.result();
          entries.push({ kind: "file", rel: file.rel, mode: file.stats.mode, size, hash });
          hashed.files++;
          hashed.bytes += size;
          options.onProgress?.({ ...hashed });
          done();
        });
      },
    },
    options,
  );
  return treeDigest(sortEntries(entries));
}
