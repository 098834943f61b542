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
/** A symlink the rules follow is opened through it, with the same precautions otherwise. */
const LINK_FLAGS = O_RDONLY | O_NONBLOCK | O_NOCTTY;
const SLASH = Buffer.from("/");

/** A directory of the tree being read. */
export interface TreeDir {
  /** Its descriptor (proc lookups), or -1 (path lookups hold none). */
  readonly fd: number;
  /** The absolute path it was reached by, as bytes: for messages, and for path lookups. */
  readonly path: Buffer;
  /** What a child's name is appended to for a lookup. */
  readonly prefix: Buffer;
  readonly dev: number;
  readonly ino: number;
}

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
  path: Buffer;
}

/** Reads one tree by descriptor-relative lookups (see {@link Lookup}). All calls are synchronous. */
export interface TreeReader {
  readonly lookup: Lookup;
  /** Opens the root directory, given its real path. Throws the filesystem's error. */
  openRoot(realPath: string): TreeDir;
  /** The entries of `dir` (names as bytes). Throws the filesystem's error, or ESOURCECHANGED. */
  list(dir: TreeDir): Dirent<Buffer>[];
  /**
   * Opens the entry `name` of `dir` without following a symlink and says what it is. Throws the
   * filesystem's error (ENOENT when it is gone since the listing), or ESOURCECHANGED. `opened` (a test
   * hook) runs right after the open, before any check of what was opened.
   */
  open(dir: TreeDir, name: Buffer, opened?: () => void): OpenedEntry;
  /**
   * Resolves the symlink `name` of `dir` once and opens what it leads to, if that is a regular file.
   * Undefined for a dangling or looping link or one to anything else. Throws ESOURCECHANGED when the
   * opened file cannot be proved to be the resolved one. Test hooks: `resolved` runs between the
   * resolution and the open, `opened` right after the open.
   */
  openLinkTarget(
    dir: TreeDir,
    name: Buffer,
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

/** `base` + "/" + `name`, without doubling the slash of a root path "/". */
export function childPath(base: Buffer, name: Buffer): Buffer {
  return base[base.length - 1] === 0x2f ? Buffer.concat([base, name]) : Buffer.concat([base, SLASH, name]);
}

/** A path for messages: bytes that are not UTF-8 show as U+FFFD. */
export function displayPath(path: Buffer): string {
  return path.toString("utf8");
}

function sourceChanged(path: Buffer): StageCacheError {
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
function openNoFollow(path: Buffer): number | "symlink" {
  try {
    return openSync(path, ENTRY_FLAGS);
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
      const path = readlinkSync(`/proc/self/fd/${fd}`, { encoding: "buffer" });
      return procDir(fd, path, stats);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  },

  list(dir) {
    return readdirSync(dir.prefix, { withFileTypes: true, encoding: "buffer" });
  },

  open(dir, name, opened) {
    const fd = openNoFollow(Buffer.concat([dir.prefix, name]));
    if (fd === "symlink") return { kind: "symlink" };
    opened?.();
    return classify(fd, fstatSync(fd), (stats) => procDir(fd, childPath(dir.path, name), stats));
  },

  openLinkTarget(dir, name, hooks) {
    const link = Buffer.concat([dir.prefix, name]);
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
    return { fd, stats, path: readlinkSync(`/proc/self/fd/${fd}`, { encoding: "buffer" }) };
  },

  close(dir) {
    closeSync(dir.fd);
  },
};

function procDir(fd: number, path: Buffer, stats: Stats): TreeDir {
  return { fd, path, prefix: Buffer.from(`/proc/self/fd/${fd}/`), dev: stats.dev, ino: stats.ino };
}

function pathDir(path: Buffer, stats: Stats): TreeDir {
  return { fd: -1, path, prefix: childPath(path, Buffer.alloc(0)), dev: stats.dev, ino: stats.ino };
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
  const now = statOrUndefined(dir.path);
  if (now?.dev !== dir.dev || now.ino !== dir.ino) throw sourceChanged(dir.path);
}

/** Throws ESOURCECHANGED unless `path` (not followed) is the file `stats` describes. */
function expectSameEntry(path: Buffer, stats: Stats): void {
  let now: Stats;
  try {
    now = lstatSync(path);
  } catch {
    throw sourceChanged(path);
  }
  if (now.dev !== stats.dev || now.ino !== stats.ino) throw sourceChanged(path);
}

const pathReader: TreeReader = {
  lookup: "path",

  openRoot(realPath) {
    const path = Buffer.from(realPath);
    const stats = statSync(path);
    if (!stats.isDirectory())
      throw Object.assign(new Error(`not a directory: ${realPath}`), { code: "ENOTDIR" });
    return pathDir(path, stats);
  },

  list(dir) {
    // Listed by path, so the names may be another directory's if the path was swapped meanwhile; no check
    // is needed here, since every name is opened, and checked, before anything is done with it.
    return readdirSync(dir.path, { withFileTypes: true, encoding: "buffer" });
  },

  open(dir, name, opened) {
    const path = Buffer.concat([dir.prefix, name]);
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
    let target: Buffer;
    try {
      target = realpathSync.native(Buffer.concat([dir.prefix, name]), { encoding: "buffer" });
    } catch {
      return undefined; // dangling or looping
    }
    if (!statOrUndefined(target)?.isFile()) return undefined;
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
      if (!realpathSync.native(target, { encoding: "buffer" }).equals(target)) throw sourceChanged(target);
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
