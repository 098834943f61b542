import { BaselineError } from "./errors.js";

/**
 * Reading and splitting git index files (format versions 2 and 3, as documented in git's
 * `gitformat-index`). `git read-tree` writes the index of a commit's tree; this module finds its entries
 * and the trees it recorded, and cuts runs of its entries into smaller indexes, one per
 * `git checkout-index` process.
 *
 * An entry: ten 32-bit stat fields (the mode is the seventh), the object id, 16 bits of flags (extended
 * bit 0x4000, path length in the low 12 bits, 0xFFF meaning "longer"), 16 more bits of flags in version 3
 * when the extended bit is set, the path, then 1 to 8 NULs so the entry's length is a multiple of 8.
 * After the entries come extensions (a 4-byte signature, a 32-bit size, the data), then the hash of
 * everything before it.
 *
 * Entries are kept as columns of numbers, not as objects: an index can hold hundreds of thousands.
 */

/** A parsed index: its bytes, and where each entry, its mode and its path are in them. */
export interface ParsedIndex {
  bytes: Buffer;
  version: number;
  oidBytes: number;
  /** Number of entries. */
  count: number;
  /** Per entry: its offset in `bytes`, the offset just past it, its mode, and its path's bounds. */
  starts: Int32Array;
  ends: Int32Array;
  modes: Int32Array;
  pathStarts: Int32Array;
  pathEnds: Int32Array;
  /** The commit's root tree and all below it, or undefined when the cache-tree extension is unusable. */
  trees: IndexTree | undefined;
}

/** A tree the index was made from, as its cache-tree extension records it (counted from the objects). */
export interface IndexTree {
  /** Its name in its parent (empty for the root), and its parent. */
  name: Buffer;
  parent: IndexTree | undefined;
  /** How many entries (files, symlinks, gitlinks) lie in it, at any depth. */
  entryCount: number;
  subtrees: IndexTree[];
}

const HEADER = 12;
const STAT_BYTES = 40;
/** Offsets of stat fields within an entry: ctime seconds, inode number, mode, size. */
const CTIME_OFFSET = 0;
const INODE_OFFSET = 20;
const MODE_OFFSET = 24;
const SIZE_OFFSET = 36;

/**
 * Parses an index written by git. Throws {@link BaselineError} `EGIT` when it is not a version 2 or 3
 * index (version 4 is written only when configured, and the private repository has no configuration).
 */
export function parseIndex(bytes: Buffer, oidBytes: number): ParsedIndex {
  const version =
    bytes.length >= HEADER && bytes.toString("latin1", 0, 4) === "DIRC" ? bytes.readUInt32BE(4) : 0;
  if (version !== 2 && version !== 3) {
    throw new BaselineError(
      "EGIT",
      `git read-tree wrote an index this package cannot read (version ${version})`,
    );
  }
  const count = bytes.readUInt32BE(8);
  // No more entries than the bytes can hold, before anything is allocated for them: a manifest is an
  // index too, and a damaged or hostile one must not make a reader allocate gigabytes.
  if (count > (bytes.length - HEADER) / (STAT_BYTES + oidBytes + 2)) throw truncated();
  const starts = new Int32Array(count);
  const ends = new Int32Array(count);
  const modes = new Int32Array(count);
  const pathStarts = new Int32Array(count);
  const pathEnds = new Int32Array(count);
  const fixed = STAT_BYTES + oidBytes + 2;
  const end = bytes.length - oidBytes;
  let at = HEADER;
  // Plain byte arithmetic: Buffer's read methods validate every call, which shows over 100,000 entries.
  for (let i = 0; i < count; i++) {
    if (at + fixed > end) throw truncated();
    const flags = ((bytes[at + fixed - 2] as number) << 8) | (bytes[at + fixed - 1] as number);
    const pathStart = at + fixed + (flags & 0x4000 ? 2 : 0);
    let pathLength = flags & 0xfff;
    if (pathLength === 0xfff) pathLength = bytes.indexOf(0, pathStart) - pathStart;
    const next = at + ((pathStart - at + pathLength + 8) & ~7);
    if (pathLength < 0 || next > end) throw truncated();
    starts[i] = at;
    ends[i] = next;
    // The mode lives in the field's low 16 bits: 4 bits of object type, 9 of permissions.
    modes[i] = ((bytes[at + MODE_OFFSET + 2] as number) << 8) | (bytes[at + MODE_OFFSET + 3] as number);
    pathStarts[i] = pathStart;
    pathEnds[i] = pathStart + pathLength;
    at = next;
  }
  const trees = readCacheTree(bytes, at, end, oidBytes);
  return { bytes, version, oidBytes, count, starts, ends, modes, pathStarts, pathEnds, trees };
}

/** The path of entry `i`, as a view into the index's bytes. */
export function entryPath(index: ParsedIndex, i: number): Buffer {
  return index.bytes.subarray(index.pathStarts[i], index.pathEnds[i]);
}

/** The object id of entry `i`, in hex. */
export function entryOid(index: ParsedIndex, i: number): string {
  const start = (index.starts[i] as number) + STAT_BYTES;
  return index.bytes.toString("hex", start, start + index.oidBytes);
}

/**
 * The bytes of the files of an index that `git checkout-index --index` rewrote after writing them: the
 * sum of the sizes git recorded, which it took from the descriptor it wrote each file through, so no file
 * is looked at again. An entry git did not write keeps the zero stat data `git read-tree` gave it; the
 * first such entry is returned as `unwritten` (its number), and the sum is then meaningless.
 *
 * git records 32 bits of a size: a file of 4 GiB or more counts modulo 4 GiB here, as in git's own index.
 */
export function checkedOutBytes(index: ParsedIndex): { bytes: number; unwritten: number | undefined } {
  const { bytes, starts, count } = index;
  let total = 0;
  for (let i = 0; i < count; i++) {
    const at = starts[i] as number;
    if (bytes.readUInt32BE(at + CTIME_OFFSET) === 0 && bytes.readUInt32BE(at + INODE_OFFSET) === 0) {
      return { bytes: total, unwritten: i };
    }
    total += bytes.readUInt32BE(at + SIZE_OFFSET);
  }
  return { bytes: total, unwritten: undefined };
}

/** A tree's path ("" for the root), for messages. */
export function treePath(tree: IndexTree): string {
  const names: string[] = [];
  for (let at: IndexTree | undefined = tree; at?.parent !== undefined; at = at.parent) {
    names.push(at.name.toString("utf8"));
  }
  return names.reverse().join("/");
}

/**
 * The cache-tree ("TREE") extension as a tree, which `git read-tree` of a single tree fills completely
 * from the tree objects themselves: each record is a path component, NUL, the entry count, a space, the
 * subtree count, LF, and the tree's id, depth first. Undefined when absent, malformed, or when any tree
 * is invalidated (entry count -1, no id).
 */
function readCacheTree(bytes: Buffer, start: number, end: number, oidBytes: number): IndexTree | undefined {
  for (let at = start; at + 8 <= end; ) {
    const size = bytes.readUInt32BE(at + 4);
    if (bytes.toString("latin1", at, at + 4) !== "TREE") {
      at += 8 + size;
      continue;
    }
    let root: IndexTree | undefined;
    // Each open directory, and how many of its subtrees are still to come.
    const open: IndexTree[] = [];
    const left: number[] = [];
    const stop = Math.min(at + 8 + size, end);
    for (let p = at + 8; p < stop; ) {
      const nul = bytes.indexOf(0, p);
      if (nul < 0 || nul >= stop || bytes[nul + 1] === 0x2d) return undefined;
      let q = nul + 1;
      let entryCount = 0;
      for (; q < stop && bytes[q] !== 0x20; q++) entryCount = entryCount * 10 + (bytes[q] as number) - 0x30;
      let subtreeCount = 0;
      for (q++; q < stop && bytes[q] !== 0x0a; q++)
        subtreeCount = subtreeCount * 10 + (bytes[q] as number) - 0x30;
      if (q + 1 + oidBytes > stop) return undefined;
      const parent = open.at(-1);
      const tree: IndexTree = { name: bytes.subarray(p, nul), entryCount, subtrees: [], parent };
      if (parent) {
        parent.subtrees.push(tree);
        left[left.length - 1] = (left.at(-1) as number) - 1;
      } else if (root === undefined) root = tree;
      else return undefined;
      open.push(tree);
      left.push(subtreeCount);
      while (left.length > 0 && left.at(-1) === 0) {
        open.pop();
        left.pop();
      }
      p = q + 1 + oidBytes;
    }
    return open.length === 0 ? root : undefined;
  }
  return undefined;
}

/**
 * An index holding the entries `entries` (numbers, in the index's order) of `source`, with a fresh
 * header: what one checkout-index process is given.
 *
 * Its trailing hash is left as zeros, git's own marker for an index written without one
 * (`index.skipHash`, git 2.40); older git does not verify the hash when it reads an index (only fsck
 * does), so both read it, and no SHA-1 of the whole index is computed for nothing.
 */
export function subIndex(source: ParsedIndex, entries: ArrayLike<number>): Buffer {
  const { starts, ends, oidBytes } = source;
  let size = HEADER;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as number;
    size += (ends[entry] as number) - (starts[entry] as number);
  }
  const index = Buffer.allocUnsafe(size + oidBytes);
  index.fill(0, size);
  index.write("DIRC", 0, "latin1");
  index.writeUInt32BE(source.version, 4);
  index.writeUInt32BE(entries.length, 8);
  let at = HEADER;
  for (let i = 0; i < entries.length; ) {
    // Copy runs of entries that are adjacent in the source at once.
    const first = entries[i] as number;
    let last = first;
    for (i++; i < entries.length && entries[i] === last + 1; i++) last++;
    at += source.bytes.copy(index, at, starts[first], ends[last]);
  }
  return index;
}

function truncated(): BaselineError {
  return new BaselineError("EGIT", "git read-tree wrote an index that ends early");
}
