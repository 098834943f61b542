import { closeSync, mkdirSync, openSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { CatFileBatch } from "./cat-file.js";
import { BaselineError, messageOf } from "./errors.js";
import { type EntryKind, joinPath, parseTree } from "./tree.js";

/** What {@link writeTree} reports while it works. */
export interface WriteTreeOptions {
  onSubmodule: (path: string) => void;
  onProgress?: ((written: number, total: number) => void) | undefined;
  signal?: AbortSignal | undefined;
}

/** A directory of the tree, in breadth-first order (a parent always precedes its children). */
interface DirNode {
  /** Path relative to the target, `/`-separated bytes; empty for the root. */
  path: Buffer;
  display: string;
  parent: number;
  depth: number;
  /** Whether a file or symlink lies somewhere below it: only those directories are created. */
  needed: boolean;
}

interface BlobEntry {
  kind: Extract<EntryKind, "file" | "executable" | "symlink">;
  oid: string;
  path: Buffer;
  display: string;
}

/** Blobs up to this size are read whole and written in the background; larger ones are streamed. */
const SMALL_BLOB = 256 * 1024;
/** At most this many `git cat-file` processes read blobs at once… */
const BLOB_READERS = 2;
/** …and each gets at least this many blobs, since a process costs a few milliseconds to start. */
const BLOBS_PER_READER = 500;
const SLASH = Buffer.from("/");

/**
 * Writes the tree of `commit`, read from the repository at `objectsCwd`, into the existing empty directory
 * `target`, plus an empty `.git` marker directory at its root.
 *
 * Guarantees: every regular file holds the blob's exact bytes (no filters, eol conversion or export
 * attributes: objects are read with `git cat-file --batch`), executables are created 0o755 and other
 * files 0o644 (less the umask), symlinks are real symlinks with the exact target, submodules are skipped
 * and reported to `onSubmodule`, directories holding no file do not appear. Every name is validated before
 * anything is written; files are opened exclusively (`wx`), and symlinks are created only after every
 * file and directory, so no write can pass through a symlink or land outside `target`.
 *
 * Throws {@link BaselineError}: `EBADTREE` for a hostile or corrupt tree, the filesystem's code when it
 * refuses a write, `EGIT` when git fails; `signal.reason` when aborted. On failure `target` holds a partial
 * tree that the caller removes (the staging directory of `cas.stage`, or the temp dir).
 */
export async function writeTree(
  objectsCwd: string,
  commit: string,
  target: string,
  options: WriteTreeOptions,
): Promise<void> {
  const { signal } = options;
  signal?.throwIfAborted();
  const { dirs, blobs } = await readTrees(objectsCwd, commit, options.onSubmodule, signal);
  const root = Buffer.from(target);
  const absolute = (path: Buffer) => Buffer.concat([root, SLASH, path]);

  guardWrite(".git", () => mkdirSync(join(target, ".git")));
  for (const dir of dirs) {
    if (dir.depth > 0 && dir.needed) guardWrite(dir.display, () => mkdirSync(absolute(dir.path)));
  }

  let written = 0;
  const total = blobs.length;
  const done = () => {
    written++;
    options.onProgress?.(written, total);
  };
  // Inflating objects is git's share of the work and the larger one: several cat-file processes, each
  // given every n-th blob, keep more than one core busy. The first failure stops the others.
  const stop = new AbortController();
  const stopSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  const readers = Math.max(1, Math.min(BLOB_READERS, Math.ceil(blobs.length / BLOBS_PER_READER)));
  const shares = Array.from({ length: readers }, (_, r) => blobs.filter((_, i) => i % readers === r));
  const symlinks: { path: Buffer; display: string; target: Buffer }[] = [];
  const results = await Promise.allSettled(
    shares.map((share) =>
      writeBlobs(objectsCwd, share, absolute, symlinks, done, stopSignal).catch((error: unknown) => {
        stop.abort(error);
        throw error;
      }),
    ),
  );
  // The first real failure, not the abort it caused in the other readers.
  const failure =
    results.find((r) => r.status === "rejected" && r.reason !== stop.signal.reason) ??
    results.find((r) => r.status === "rejected");
  if (failure?.status === "rejected") throw failure.reason;
  signal?.throwIfAborted();

  // Last, so that no file or directory above could have been written through one of them.
  for (const link of symlinks) {
    signal?.throwIfAborted();
    guardWrite(link.display, () => symlinkSync(link.target, absolute(link.path)));
    done();
  }
}

/**
 * Streams `blobs` from one `git cat-file --batch` and writes the regular files; symlink targets are
 * collected into `symlinks` for the caller to create last.
 *
 * The writes are synchronous syscalls made between reads of git's output: for thousands of small files,
 * the thread pool's round trips cost more than the writes themselves, and the event loop is never held
 * for longer than one pipe buffer's worth of files.
 */
async function writeBlobs(
  objectsCwd: string,
  blobs: BlobEntry[],
  absolute: (path: Buffer) => Buffer,
  symlinks: { path: Buffer; display: string; target: Buffer }[],
  done: () => void,
  signal: AbortSignal,
): Promise<void> {
  const batch = new CatFileBatch(objectsCwd, { buffered: true, signal });
  try {
    // Ask for every blob at once: git streams them back in this order while we write.
    batch.request(blobs.map((blob) => blob.oid));
    for (const blob of blobs) {
      signal.throwIfAborted();
      const header = await batch.readHeader();
      if (header.type !== "blob" || header.oid !== blob.oid) {
        throw new BaselineError(
          "EBADTREE",
          `tree entry ${blob.display} should be blob ${blob.oid} but git returned ${header.type} ${header.oid}`,
        );
      }
      if (blob.kind === "symlink") {
        symlinks.push({
          path: blob.path,
          display: blob.display,
          target: Buffer.from(await batch.readBody(header.size)),
        });
        continue;
      }
      const mode = blob.kind === "executable" ? 0o755 : 0o644;
      const path = absolute(blob.path);
      if (header.size <= SMALL_BLOB) {
        const bytes = await batch.readBody(header.size);
        guardWrite(blob.display, () => writeFileSync(path, bytes, { flag: "wx", mode }));
      } else {
        // Large blobs flow through chunk by chunk, so memory does not grow with the blob.
        const fd = guardWrite(blob.display, () => openSync(path, "wx", mode));
        try {
          await batch.pipeBody(header.size, async (chunk) => {
            guardWrite(blob.display, () => writeAll(fd, chunk));
          });
        } finally {
          closeSync(fd);
        }
      }
      done();
    }
  } finally {
    batch.close();
  }
}

function writeAll(fd: number, chunk: Buffer): void {
  for (let offset = 0; offset < chunk.length; ) offset += writeSync(fd, chunk, offset);
}

/**
 * Reads the commit's trees breadth-first, one level per round trip, validating every entry. Returns the
 * directories (marked `needed` when a file or symlink lies below) and the blobs to write.
 */
async function readTrees(
  objectsCwd: string,
  commit: string,
  onSubmodule: (path: string) => void,
  signal: AbortSignal | undefined,
): Promise<{ dirs: DirNode[]; blobs: BlobEntry[] }> {
  // Trees are read interactively, level by level; this process is done once the tree is known.
  const batch = new CatFileBatch(objectsCwd, { signal });
  try {
    return await walkTrees(batch, commit, onSubmodule, signal);
  } finally {
    batch.close();
  }
}

async function walkTrees(
  batch: CatFileBatch,
  commit: string,
  onSubmodule: (path: string) => void,
  signal: AbortSignal | undefined,
): Promise<{ dirs: DirNode[]; blobs: BlobEntry[] }> {
  const oidBytes = commit.length === 64 ? 32 : 20;
  const dirs: DirNode[] = [{ path: Buffer.alloc(0), display: "", parent: -1, depth: 0, needed: false }];
  const blobs: BlobEntry[] = [];
  const submodules: string[] = [];
  let level: { dir: number; name: string }[] = [{ dir: 0, name: `${commit}^{tree}` }];
  while (level.length > 0) {
    signal?.throwIfAborted();
    batch.request(level.map((tree) => tree.name));
    const next: typeof level = [];
    for (const tree of level) {
      const header = await batch.readHeader();
      const body = await batch.readBody(header.size);
      const dir = dirs[tree.dir] as DirNode;
      if (header.type !== "tree") {
        throw new BaselineError(
          "EBADTREE",
          `tree entry ${dir.display || "/"} is a ${header.type}, not a tree`,
        );
      }
      for (const entry of parseTree(body, oidBytes, dir.display)) {
        const path = dir.path.length === 0 ? entry.name : Buffer.concat([dir.path, SLASH, entry.name]);
        const display = joinPath(dir.display, entry.name);
        if (entry.kind === "tree") {
          dirs.push({ path, display, parent: tree.dir, depth: dir.depth + 1, needed: false });
          next.push({ dir: dirs.length - 1, name: entry.oid });
        } else if (entry.kind === "submodule") {
          submodules.push(display);
        } else {
          blobs.push({ kind: entry.kind, oid: entry.oid, path, display });
          markNeeded(dirs, tree.dir);
        }
      }
    }
    level = next;
  }
  // Reported only once the whole tree is known to be valid.
  for (const path of submodules) onSubmodule(path);
  return { dirs, blobs };
}

function markNeeded(dirs: DirNode[], index: number): void {
  for (let at = index; at > 0; ) {
    const dir = dirs[at] as DirNode;
    if (dir.needed) return;
    dir.needed = true;
    at = dir.parent;
  }
}

/** Runs a filesystem write, turning its failure into a BaselineError with the errno code, naming the tree path. */
function guardWrite<T>(display: string, write: () => T): T {
  try {
    return write();
  } catch (error) {
    if (error instanceof BaselineError) throw error;
    const code = (error as { code?: unknown } | null)?.code;
    const errno = typeof code === "string" ? code : "EWRITE";
    const hint =
      errno === "EEXIST"
        ? " (two tree entries map to one file name, as happens on a case-insensitive filesystem)"
        : "";
    const advice =
      errno === "ENOSPC" || errno === "EDQUOT"
        ? "; free space on that filesystem or use another cache directory"
        : errno === "EACCES" || errno === "EPERM" || errno === "EROFS"
          ? "; the cache directory (or the OS temp dir without a cache) must be writable"
          : "";
    throw new BaselineError(errno, `cannot write ${display}${hint}: ${messageOf(error)}${advice}`, {
      cause: error,
    });
  }
}
