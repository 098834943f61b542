import { close, open as openFd, write as writeFd } from "node:fs";
import { mkdir, open, symlink } from "node:fs/promises";
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
/** Writes in flight at once: enough to keep libuv's threads busy, and memory bounded (× SMALL_BLOB). */
const WRITE_CONCURRENCY = 16;
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
 * Throws {@link BaselineError}: `EBADTREE` for a hostile or corrupt tree, `EWRITE` when the filesystem
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
  const queue = new TaskQueue(WRITE_CONCURRENCY);
  let blobBatch: CatFileBatch | undefined;
  try {
    const { dirs, blobs } = await readTrees(objectsCwd, commit, options.onSubmodule, signal);
    const root = Buffer.from(target);
    const absolute = (path: Buffer) => Buffer.concat([root, SLASH, path]);

    await guardWrite(".git", () => mkdir(join(target, ".git")));
    await createDirectories(dirs, absolute);

    // Ask for every blob at once: git streams them back in this order while we write.
    const batch = new CatFileBatch(objectsCwd, { buffered: true, signal });
    blobBatch = batch;
    batch.request(blobs.map((blob) => blob.oid));
    const total = blobs.length;
    let written = 0;
    const done = () => {
      written++;
      options.onProgress?.(written, total);
    };
    const symlinks: { path: Buffer; display: string; target: Buffer }[] = [];
    for (const blob of blobs) {
      signal?.throwIfAborted();
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
        await queue.add(() => guardWrite(blob.display, () => writeSmallFile(path, bytes, mode)).then(done));
      } else {
        await guardWrite(blob.display, async () => {
          const handle = await open(path, "wx", mode);
          try {
            await batch.pipeBody(header.size, (chunk) => handle.write(chunk));
          } finally {
            await handle.close();
          }
        });
        done();
      }
    }
    await queue.drain();
    // Last, so that no file or directory above could have been written through one of them.
    for (const link of symlinks) {
      signal?.throwIfAborted();
      await guardWrite(link.display, () => symlink(link.target, absolute(link.path)));
      done();
    }
  } finally {
    blobBatch?.close();
    // No write may still be running when the caller removes the partial tree.
    await queue.settle();
  }
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

/** Creates the needed directories level by level, each level's in parallel. */
async function createDirectories(dirs: DirNode[], absolute: (path: Buffer) => Buffer): Promise<void> {
  const queue = new TaskQueue(WRITE_CONCURRENCY);
  let depth = 1;
  for (const dir of dirs) {
    if (dir.depth === 0 || !dir.needed) continue;
    if (dir.depth !== depth) {
      await queue.drain();
      depth = dir.depth;
    }
    await queue.add(() => guardWrite(dir.display, () => mkdir(absolute(dir.path))));
  }
  await queue.drain();
}

/**
 * Creates a file exclusively and writes `bytes` into it with the callback API on a bare descriptor: for
 * thousands of small files it costs far less than fs/promises, whose FileHandle objects dominate here.
 */
function writeSmallFile(path: Buffer, bytes: Buffer, mode: number): Promise<void> {
  return new Promise((resolve, reject) => {
    openFd(path, "wx", mode, (openError, fd) => {
      if (openError) {
        reject(openError);
        return;
      }
      const finish = (error: unknown) => {
        close(fd, (closeError) => (error || closeError ? reject(error ?? closeError) : resolve()));
      };
      const writeFrom = (offset: number) => {
        if (offset >= bytes.length) {
          finish(null);
          return;
        }
        writeFd(fd, bytes, offset, bytes.length - offset, null, (writeError, count) => {
          if (writeError) finish(writeError);
          else writeFrom(offset + count);
        });
      };
      writeFrom(0);
    });
  });
}

/** Runs a filesystem write, turning its failure into `EWRITE` naming the tree path. */
async function guardWrite(display: string, write: () => Promise<unknown>): Promise<void> {
  try {
    await write();
  } catch (error) {
    if (error instanceof BaselineError) throw error;
    const code = (error as { code?: unknown } | null)?.code;
    const hint =
      code === "EEXIST"
        ? " (two tree entries map to one file name, as happens on a case-insensitive filesystem)"
        : "";
    throw new BaselineError("EWRITE", `cannot write ${display}${hint}: ${messageOf(error)}`, {
      cause: error,
    });
  }
}

/** Runs at most `limit` tasks at once; the first failure is thrown by a later `add` or by `drain`. */
class TaskQueue {
  readonly #limit: number;
  #active = 0;
  #waiters: (() => void)[] = [];
  #failed = false;
  #failure: unknown;

  constructor(limit: number) {
    this.#limit = limit;
  }

  async add(task: () => Promise<unknown>): Promise<void> {
    while (this.#active >= this.#limit) await this.#slot();
    this.#throwIfFailed();
    this.#active++;
    task()
      .catch((error: unknown) => {
        if (!this.#failed) {
          this.#failed = true;
          this.#failure = error;
        }
      })
      .finally(() => {
        this.#active--;
        this.#waiters.shift()?.();
      });
  }

  /** Waits for the running tasks, whatever their outcome. */
  async settle(): Promise<void> {
    while (this.#active > 0) await this.#slot();
  }

  async drain(): Promise<void> {
    while (this.#active > 0) await this.#slot();
    this.#throwIfFailed();
  }

  #slot(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #throwIfFailed(): void {
    if (this.#failed) throw this.#failure;
  }
}
