import {
  closeSync,
  constants,
  type Dirent,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  type Stats,
  statSync,
} from "node:fs";
import { type BytePath, bytePathOf, bytePathOfText, displayPath, fsPath, joinPath } from "./byte-path.js";
import { codeOf, StageCacheError } from "./errors.js";

/**
 * How entries below an open directory are looked up.
 *
 * - `"proc"` (Linux): through `/proc/self/fd/<fd of the directory>/<name>`. The kernel resolves the magic
 *   link to the directory the descriptor holds, wherever it has moved since, then looks `name` up in it,
 *   so no path component above the entry is ever resolved again: a directory swapped for a symlink after
 *   it was opened cannot redirect a lookup. This is `openat(2)` for a runtime that has no `openat`.
 * - `"path"` (elsewhere): by absolute path, with identity checks after each lookup: the directory's path
 *   must still lead to the directory (device and inode) first found there, and the entry's path to the
 *   inode just opened; a followed symlink's resolved path must still resolve to itself and to the opened
 *   file. A swap of any component is thereby seen (ESOURCECHANGED), unless it is made and undone within
 *   the few microseconds between the open and the checks. A check before the lookup would not narrow that
 *   window, so there is none. The residual window is what `"proc"` closes.
 */
export type Lookup = "proc" | "path";

const { O_RDONLY } = constants;
const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;
const O_NONBLOCK = constants.O_NONBLOCK ?? 0;
const O_NOCTTY = constants.O_NOCTTY ?? 0;
const O_DIRECTORY = constants.O_DIRECTORY ?? 0;

/** An entry is opened itself, never what it points to (a symlink fails with ELOOP), without blocking on a
 * FIFO swapped in, and without ever becoming the process's controlling terminal. */
const ENTRY_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
/** An entry listed as a directory: the open succeeds only if it still is one (ENOTDIR for anything else,
 * a symlink included), so what was opened needs no `fstat` to be known. */
const DIR_ENTRY_FLAGS = ENTRY_FLAGS | O_DIRECTORY;
/** A symlink the rules follow is opened through it, with the same precautions otherwise. */
const LINK_FLAGS = O_RDONLY | O_NONBLOCK | O_NOCTTY;

/** A directory of the tree being read. */
export interface TreeDir {
  /** Its descriptor (proc lookups), or -1 (path lookups hold none). */
  readonly fd: number;
  /** The absolute path it was reached by: for messages, and for path lookups. */
  readonly path: BytePath;
  /** What a child's name is appended to for a lookup. */
  readonly prefix: BytePath;
  /** Device and inode, for the identity checks of path lookups (0 for proc lookups, which need none). */
  readonly dev: number;
  readonly ino: number;
}

/** An entry of a listing: its name, and its type as the listing saw it (`Dirent`'s methods). */
export type ListedEntry = Dirent<string> & { readonly name: BytePath };

/** What an entry turned out to be once opened. Only `file` and `dir` hold a descriptor. */
export type OpenedEntry =
  | { kind: "file"; fd: number; stats: Stats }
  | { kind: "dir"; dir: TreeDir }
  | { kind: "symlink" }
  | { kind: "other" };

/** A regular file reached through a symlink, opened, with the absolute path it really has. */
export interface LinkTarget {
  fd: number;
  stats: Stats;
  path: BytePath;
}

/** Reads one tree by descriptor-relative lookups (see {@link Lookup}). All calls are synchronous. */
export interface TreeReader {
  readonly lookup: Lookup;
  /** Opens the root directory, given its real path. Throws the filesystem's error. */
  openRoot(realPath: string): TreeDir;
  /** The entries of `dir`, in the byte order of their names. Throws the filesystem's error. */
  list(dir: TreeDir): ListedEntry[];
  /**
   * Opens the entry `name` of `dir` without following a symlink and says what it is. `listedAsDir` (what
   * the listing said) only chooses the cheapest way to find out. Throws the filesystem's error (ENOENT
   * when it is gone since the listing), or ESOURCECHANGED. `opened` (a test hook) runs right after the
   * open, before any check of what was opened.
   */
  open(dir: TreeDir, name: BytePath, listedAsDir: boolean, opened?: () => void): OpenedEntry;
  /**
   * Resolves the symlink `name` of `dir` once and opens what it leads to, if that is a regular file.
   * Undefined for a dangling or looping link or one to anything else. Throws ESOURCECHANGED when the
   * opened file cannot be proved to be the resolved one. Test hooks: `resolved` runs between the
   * resolution and the open, `opened` right after the open.
   */
  openLinkTarget(
    dir: TreeDir,
    name: BytePath,
    hooks?: { resolved?: () => void; opened?: () => void },
  ): LinkTarget | undefined;
  /** Releases a directory's descriptor, if it holds one. */
  close(dir: TreeDir): void;
}

let procWorks: boolean | undefined;

/** Whether `/proc/self/fd/<fd>/<name>` lookups work here (Linux with /proc mounted). Probed once. */
export function procLookupWorks(): boolean {
  if (procWorks !== undefined) return procWorks;
  procWorks = false;
  if (process.platform !== "linux") return procWorks;
  let fd = -1;
  try {
    fd = openSync("/", O_RDONLY | O_DIRECTORY);
    const direct = fstatSync(fd);
    const viaProc = statSync(`/proc/self/fd/${fd}/.`);
    procWorks = direct.dev === viaProc.dev && direct.ino === viaProc.ino;
  } catch {
    // No /proc (a container without it, a chroot): path lookups.
  } finally {
    if (fd >= 0) closeSync(fd);
  }
  return procWorks;
}

/** A reader using `lookup`, by default the strongest this platform offers. */
export function treeReader(lookup: Lookup = procLookupWorks() ? "proc" : "path"): TreeReader {
  return lookup === "proc" ? procReader : pathReader;
}

function sourceChanged(path: BytePath): StageCacheError {
  const shown = displayPath(path);
  return new StageCacheError(
    "ESOURCECHANGED",
    `the source changed while it was read: ${shown} was moved or replaced; retry once the source is stable`,
    { path: shown },
  );
}

/** What an opened descriptor is; closes it unless it is kept as a file or a directory. */
function classify(fd: number, stats: Stats, dirOf: (stats: Stats) => TreeDir): OpenedEntry {
  if (stats.isFile()) return { kind: "file", fd, stats };
  if (stats.isDirectory()) return { kind: "dir", dir: dirOf(stats) };
  closeSync(fd);
  return { kind: "other" };
}

/** Opens an entry; a symlink shows as ELOOP (EMLINK on some BSDs) because of O_NOFOLLOW. */
function openNoFollow(path: BytePath): number | "symlink" {
  try {
    return openSync(fsPath(path), ENTRY_FLAGS);
  } catch (error) {
    const code = codeOf(error);
    if (code === "ELOOP" || code === "EMLINK") return "symlink";
    throw error;
  }
}

const procReader: TreeReader = {
  lookup: "proc",

  openRoot(realPath) {
    const fd = openSync(realPath, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_NOCTTY);
    try {
      const stats = fstatSync(fd);
      // The kernel's own name for what was opened, so that link targets (named the same way) compare.
      return procDir(fd, kernelPath(fd), stats);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  },

  list(dir) {
    return listing(dir.prefix);
  },

  open(dir, name, listedAsDir, opened) {
    const path = (dir.prefix + name) as BytePath;
    if (listedAsDir) {
      let fd = -1;
      try {
        fd = openSync(fsPath(path), DIR_ENTRY_FLAGS);
      } catch (error) {
        // No longer a directory (ENOTDIR, a symlink included): found out below, like any entry.
        const code = codeOf(error);
        if (code !== "ENOTDIR" && code !== "ELOOP" && code !== "EMLINK") throw error;
      }
      if (fd >= 0) {
        opened?.();
        return { kind: "dir", dir: procDir(fd, joinPath(dir.path, name)) };
      }
    }
    const fd = openNoFollow(path);
    if (fd === "symlink") return { kind: "symlink" };
    opened?.();
    return classify(fd, fstatSync(fd), () => procDir(fd, joinPath(dir.path, name)));
  },

  openLinkTarget(dir, name, hooks) {
    const link = fsPath((dir.prefix + name) as BytePath);
    // Looked at first so that a link to a device or a directory is never opened at all.
    const seen = statOrUndefined(link);
    if (!seen?.isFile()) return undefined;
    hooks?.resolved?.();
    let fd: number;
    try {
      fd = openSync(link, LINK_FLAGS);
    } catch {
      return undefined; // gone or dangling since: skipped like any dangling link
    }
    hooks?.opened?.();
    const stats = fstatSync(fd);
    if (!stats.isFile()) {
      closeSync(fd);
      return undefined;
    }
    // Where the opened file really is: the kernel's path of the descriptor, not a second resolution.
    return { fd, stats, path: kernelPath(fd) };
  },

  close(dir) {
    closeSync(dir.fd);
  },
};

/** A directory held open for proc lookups; its identity is the descriptor, so no device and inode. */
function procDir(fd: number, path: BytePath, stats?: Stats): TreeDir {
  const prefix = `/proc/self/fd/${fd}/` as BytePath;
  return { fd, path, prefix, dev: stats?.dev ?? 0, ino: stats?.ino ?? 0 };
}

function pathDir(path: BytePath, stats: Stats): TreeDir {
  return { fd: -1, path, prefix: joinPath(path, "" as BytePath), dev: stats.dev, ino: stats.ino };
}

/** The path the kernel has for what `fd` holds. */
function kernelPath(fd: number): BytePath {
  return bytePathOf(readlinkSync(`/proc/self/fd/${fd}`, { encoding: "buffer" }));
}

/**
 * The entries of the directory at `path`, names as byte paths: the latin1 encoding turns each byte into one
 * character, so every name comes back exactly, UTF-8 or not. Sorted by libuv (strcmp: byte order).
 */
function listing(path: BytePath): ListedEntry[] {
  return readdirSync(fsPath(path), { withFileTypes: true, encoding: "latin1" }) as ListedEntry[];
}

function statOrUndefined(path: Buffer | string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** Throws ESOURCECHANGED unless `dir`'s path still leads to the directory first opened there. */
function expectSameDir(dir: TreeDir): void {
  const now = statOrUndefined(fsPath(dir.path));
  if (now?.dev !== dir.dev || now.ino !== dir.ino) throw sourceChanged(dir.path);
}

/** Throws ESOURCECHANGED unless `path` (not followed) is the file `stats` describes. */
function expectSameEntry(path: BytePath, stats: Stats): void {
  let now: Stats;
  try {
    now = lstatSync(fsPath(path));
  } catch {
    throw sourceChanged(path);
  }
  if (now.dev !== stats.dev || now.ino !== stats.ino) throw sourceChanged(path);
}

const pathReader: TreeReader = {
  lookup: "path",

  openRoot(realPath) {
    const path = bytePathOfText(realPath);
    const stats = statSync(realPath);
    if (!stats.isDirectory())
      throw Object.assign(new Error(`not a directory: ${realPath}`), { code: "ENOTDIR" });
    return pathDir(path, stats);
  },

  list(dir) {
    // Listed by path, so the names may be another directory's if the path was swapped meanwhile; no check
    // is needed here, since every name is opened, and checked, before anything is done with it.
    return listing(dir.path);
  },

  open(dir, name, _listedAsDir, opened) {
    const path = (dir.prefix + name) as BytePath;
    const fd = openNoFollow(path);
    if (fd === "symlink") return { kind: "symlink" };
    let stats: Stats;
    try {
      opened?.();
      stats = fstatSync(fd);
      // After the open, the directory's path still leads to it and the name in it to what was opened:
      // so what was opened is the entry, whatever happened to the path on the way.
      expectSameDir(dir);
      expectSameEntry(path, stats);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    if (!stats.isDirectory()) return classify(fd, stats, () => pathDir(path, stats));
    // Directories are listed by path, so their descriptor is not kept.
    closeSync(fd);
    return { kind: "dir", dir: pathDir(path, stats) };
  },

  openLinkTarget(dir, name, hooks) {
    let target: BytePath;
    try {
      target = bytePathOf(
        realpathSync.native(fsPath((dir.prefix + name) as BytePath), { encoding: "buffer" }),
      );
    } catch {
      return undefined; // dangling or looping
    }
    if (!statOrUndefined(fsPath(target))?.isFile()) return undefined;
    hooks?.resolved?.();
    let fd: number | "symlink";
    try {
      // The resolved path holds no symlink, so one appearing at its end since is refused.
      fd = openNoFollow(target);
    } catch {
      return undefined; // gone since: skipped like any dangling link
    }
    if (fd === "symlink") return undefined;
    let stats: Stats;
    try {
      hooks?.opened?.();
      stats = fstatSync(fd);
      // The opened file must be the one the resolution found: the path still resolves to itself (no
      // component became a symlink) and leads to the opened inode.
      const resolved = realpathSync.native(fsPath(target), { encoding: "buffer" });
      if (bytePathOf(resolved) !== target) throw sourceChanged(target);
      expectSameEntry(target, stats);
    } catch (error) {
      closeSync(fd);
      throw error instanceof StageCacheError ? error : sourceChanged(target);
    }
    if (!stats.isFile()) {
      closeSync(fd);
      return undefined;
    }
    return { fd, stats, path: target };
  },

  close() {},
};
