import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { codeOf, messageOf, StageCacheError } from "./errors.js";
import { type TreeFile, walkTree } from "./walk.js";

/** Files up to this size are read in one call; larger ones are streamed through one reused buffer. */
const WHOLE_READ_LIMIT = 1024 * 1024;
const FORMAT = "cas-stage-tree-v1\0";

/**
 * A lowercase sha256 hex digest of exactly the tree that `StageCache.stage` would copy from `source`
 * (the same walk, so the two cannot disagree): every directory's relative path, and for every file its
 * relative path, whether it is executable by its owner, and its bytes. Not hashed: mtimes, owners, other
 * permission bits, and the source's own path. Identical trees in different places hence get the same
 * digest, and any change to a copied file, or any added, removed or renamed one, changes it.
 *
 * Files are read synchronously within the walk's slices (hashing is bound to one thread anyway, and a
 * synchronous read avoids several thread-pool round trips per file); large files are streamed in 1 MiB
 * chunks, so memory stays bounded and the event loop gets a turn every few milliseconds.
 *
 * Options: `followExternalSymlinks` as for the cache (symlinks leaving the root are skipped otherwise).
 *
 * Throws {@link StageCacheError}: `ENOENT` for a missing source, `ENOTDIR` for one that is not a directory,
 * the filesystem's code (e.g. `EACCES`) for a file that cannot be read. Writes nothing.
 */
export async function fingerprintTree(
  source: string,
  options: { followExternalSymlinks?: boolean } = {},
): Promise<string> {
  const records: { rel: string; header: string; digest?: Buffer }[] = [];
  const chunk = Buffer.allocUnsafe(WHOLE_READ_LIMIT);
  await walkTree(
    source,
    {
      dir: (rel) => {
        records.push({ rel, header: `d ${rel}\0` });
      },
      file: (file, done) => {
        const header = `f ${file.mode & 0o100 ? "x" : "-"} ${file.size} ${file.rel}\0`;
        try {
          records.push({ rel: file.rel, header, digest: hashFile(file, chunk) });
        } catch (error) {
          return done(error);
        }
        done();
      },
    },
    { followExternalSymlinks: options.followExternalSymlinks ?? false },
  );
  // One sorted sequence, so the digest does not depend on the order the filesystem lists entries in.
  records.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const hash = createHash("sha256").update(FORMAT);
  for (const record of records) {
    hash.update(record.header);
    if (record.digest) hash.update(record.digest);
  }
  return hash.digest("hex");
}

function hashFile(file: TreeFile, chunk: Buffer): Buffer {
  const hash = createHash("sha256");
  try {
    if (file.size <= chunk.length) {
      hash.update(readFileSync(file.from));
    } else {
      const fd = openSync(file.from, "r");
      try {
        for (let read = readSync(fd, chunk); read > 0; read = readSync(fd, chunk)) {
          hash.update(read === chunk.length ? chunk : chunk.subarray(0, read));
        }
      } finally {
        closeSync(fd);
      }
    }
  } catch (cause) {
    throw new StageCacheError(codeOf(cause) ?? "EIO", `cannot read ${file.from}: ${messageOf(cause)}`, {
      path: file.from,
      cause,
    });
  }
  return hash.digest();
}
