import { createHash } from "node:crypto";
import type { Dirent } from "node:fs";
import { closeSync, constants, fstatSync, openSync, readdirSync, readlinkSync, readSync } from "node:fs";
import { lstat, readFile } from "node:fs/promises";
import { join } from "node:path";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { codeOf, type EntryStore } from "@cas-stage/cas";
import { messageOf } from "./errors.js";
import { MANIFEST, MARKER_DIR, SENTINEL } from "./layout.js";
import { decodeManifest, type EntryMode, type ManifestEntry, readTreeEntries } from "./manifest.js";
import { type CachedBaseline, scanCache } from "./scan.js";
import { readSlotRecord } from "./slot-record.js";
import { cacheError, openStore } from "./store.js";

export interface VerifyOptions {
  /**
   * A directory of a git repository holding the cached commits: each slot is checked against the commit's
   * tree as git lists it. A commit that repository does not hold is checked against its manifest. Without
   * `repo`, every slot is checked against the manifest its build recorded.
   */
  repo?: string | undefined;
  /** Move every bad slot aside (through the eviction path), so that the next call rebuilds it. */
  fix?: boolean | undefined;
  signal?: AbortSignal | undefined;
  onWarning?: ((message: string, path: string) => void) | undefined;
}

/** How a slot differs from what it should hold: the first differing path, `/`-separated, relative to it. */
export interface SlotDifference {
  path: string;
  /** `missing`: expected, not there; `extra`: there, not expected; `content`: other bytes; `mode`: other kind or executable bit. */
  kind: "missing" | "extra" | "content" | "mode";
  expected?: string;
  found?: string;
}

export interface VerifiedSlot extends CachedBaseline {
  /** `ok`: whole and exact; `bad`: see `difference`; `gone`: removed or replaced while being checked. */
  status: "ok" | "bad" | "gone";
  /** What it was checked against. */
  against: "git" | "manifest";
  difference?: SlotDifference;
  /** With `fix`: the bad slot was moved aside. */
  fixed?: boolean;
}

export interface VerifyReport {
  slots: VerifiedSlot[];
  bad: number;
  fixed: number;
  /** Bytes read and hashed. */
  checkedBytes: number;
}

/**
 * Checks every complete slot of the baseline cache under `cacheRoot`: each file's content (hashed as a git
 * blob: SHA-1, or SHA-256 for a 64-digit commit), its executable bit, each symlink's target, and that
 * nothing is missing or extra (the `.git` marker aside); against the commit's tree from git when `repo`
 * is given, else against the manifest recorded at build time. Reports the first differing path per slot.
 * Reads without following symlinks and changes nothing, except with `fix`: a bad slot is then moved aside
 * with `EntryStore.evict(…, { force: true })` (one rename into the trash), so the next call rebuilds it. A
 * slot that was evicted or replaced while being checked is reported `gone`, never `bad`, and never moved.
 *
 * A missing cache gives an empty report. Throws {@link BaselineError} with the filesystem's code when the
 * cache cannot be read, and `signal.reason` when aborted.
 */
export async function verifyBaselines(cacheRoot: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  return verifyWith(openStore(cacheRoot, { onWarning: options.onWarning }), cacheRoot, options);
}

/** @internal {@link verifyBaselines} with a given store, and a test seam after each slot was compared. */
export async function verifyWith(
  store: EntryStore,
  cacheRoot: string,
  options: VerifyOptions,
  hooks: { afterCompare?: (slot: string) => unknown } = {},
): Promise<VerifyReport> {
  const { signal } = options;
  const scan = await scanCache(cacheRoot, store, Number.POSITIVE_INFINITY, { measureDebris: false });
  const report: VerifyReport = { slots: [], bad: 0, fixed: 0, checkedBytes: 0 };
  for (const slot of scan.slots) {
    signal?.throwIfAborted();
    const identity = await identityOf(slot.path);
    const { against, entries, problem } = await expectedEntries(slot, options);
    const counter = { bytes: 0 };
    const difference =
      problem ?? (entries ? await compareTree(slot.path, entries, counter, signal) : undefined);
    report.checkedBytes += counter.bytes;
    await hooks.afterCompare?.(slot.path);
    const verified: VerifiedSlot = { ...slot, status: "ok", against };
    if (difference) {
      // A slot evicted (and maybe rebuilt) under us looks torn: only the very slot we read is bad.
      verified.status = identity !== undefined && (await identityOf(slot.path)) === identity ? "bad" : "gone";
      if (verified.status === "bad") {
        verified.difference = difference;
        report.bad++;
        if (options.fix) {
          try {
            verified.fixed = await store.evict(slot.path, slot.lastUsedMs, { force: true });
          } catch (error) {
            throw cacheError(cacheRoot, error);
          }
          if (verified.fixed) report.fixed++;
        }
      }
    }
    report.slots.push(verified);
  }
  return report;
}

/**
 * What tells one slot directory from another that replaced it: the inode number alone can be reused at once
 * by a rebuild, but a rebuilt slot was renamed into place later, which sets its ctime.
 */
async function identityOf(slot: string): Promise<string | undefined> {
  const stats = await lstat(slot, { bigint: true }).catch(() => undefined);
  return stats ? `${stats.ino}:${stats.ctimeNs}` : undefined;
}

async function expectedEntries(
  slot: CachedBaseline,
  options: VerifyOptions,
): Promise<{ against: "git" | "manifest"; entries?: ManifestEntry[]; problem?: SlotDifference }> {
  const record = await readSlotRecord(slot.path);
  if (record && record.commit !== slot.commit) {
    return {
      against: "manifest",
      problem: { path: SENTINEL, kind: "content", expected: slot.commit, found: record.commit },
    };
  }
  if (options.repo !== undefined) {
    try {
      return { against: "git", entries: await readTreeEntries(options.repo, slot.commit, options.signal) };
    } catch (error) {
      options.signal?.throwIfAborted();
      options.onWarning?.(
        `${slot.commit} cannot be read from ${options.repo} (${messageOf(error)}); checking it against its manifest`,
        slot.path,
      );
    }
  }
  const bytes = await readFile(join(slot.path, MANIFEST)).catch(() => undefined);
  if (!bytes) return { against: "manifest", problem: { path: MANIFEST, kind: "missing" } };
  const manifest = decodeManifest(bytes);
  if (!manifest || manifest.commit !== slot.commit) {
    return {
      against: "manifest",
      problem: { path: MANIFEST, kind: "content", expected: `a manifest of ${slot.commit}` },
    };
  }
  return { against: "manifest", entries: manifest.entries };
}

/** Read chunk for hashing: large enough that syscalls do not dominate, small enough to stay in cache. */
const CHUNK = 1 << 20;
const chunk = Buffer.allocUnsafe(CHUNK);
const SLASH = Buffer.from("/");

/**
 * The first difference between the tree at `root` and `entries`, or undefined when they agree. Reads with
 * synchronous calls between event-loop turns: thousands of small files cost more in thread-pool round
 * trips than in reading.
 */
async function compareTree(
  root: string,
  entries: readonly ManifestEntry[],
  counter: { bytes: number },
  signal: AbortSignal | undefined,
): Promise<SlotDifference | undefined> {
  const base = Buffer.concat([Buffer.from(root), SLASH]);
  const expected = new Set<string>();
  for (const [index, entry] of entries.entries()) {
    if (index % 256 === 255) {
      await yieldToLoop();
      signal?.throwIfAborted();
    }
    expected.add(entry.path.toString("latin1"));
    const difference = compareEntry(Buffer.concat([base, entry.path]), entry, counter, root);
    if (difference) return { path: entry.path.toString("utf8"), ...difference };
  }
  return findExtra(root, expected);
}

/**
 * How the entry at `path` differs from `entry`. The decision and the read go through one object: the path
 * is opened without following a symlink (and without blocking on a FIFO), and the descriptor is what is
 * inspected and hashed, so a swap between a look and a read cannot mislead it. A path that is gone (an
 * eviction moving the slot away meanwhile) is `missing`.
 */
function compareEntry(
  path: Buffer,
  entry: ManifestEntry,
  counter: { bytes: number },
  root: string,
): Omit<SlotDifference, "path"> | undefined {
  const algorithm = entry.oid.length === 64 ? "sha256" : "sha1";
  const blobId = (oid: string) =>
    oid === entry.oid ? undefined : { kind: "content" as const, expected: entry.oid, found: oid };
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = codeOf(error);
    try {
      // ELOOP: the path is a symlink.
      if (code !== "ELOOP") throw error;
      if (entry.mode !== "120000") return { kind: "mode", expected: entry.mode, found: "120000" };
      const target = readlinkSync(path, { encoding: "buffer" });
      counter.bytes += target.length;
      return blobId(createHash(algorithm).update(`blob ${target.length}\0`).update(target).digest("hex"));
    } catch (failure) {
      const why = codeOf(failure);
      if (why === "ENOENT" || why === "ENOTDIR") return { kind: "missing", expected: entry.mode };
      throw cacheError(root, failure);
    }
  }
  try {
    const stats = fstatSync(fd);
    const found = modeOf(stats);
    if (found !== entry.mode) return { kind: "mode", expected: entry.mode, found };
    const hash = createHash(algorithm).update(`blob ${stats.size}\0`);
    for (
      let read = readSync(fd, chunk, 0, CHUNK, null);
      read > 0;
      read = readSync(fd, chunk, 0, CHUNK, null)
    ) {
      hash.update(chunk.subarray(0, read));
      counter.bytes += read;
    }
    return blobId(hash.digest("hex"));
  } finally {
    closeSync(fd);
  }
}

function modeOf(stats: {
  isFile(): boolean;
  isSymbolicLink(): boolean;
  isDirectory(): boolean;
  mode: number;
}): string {
  if (stats.isSymbolicLink()) return "120000";
  if (stats.isFile()) return (stats.mode & 0o100) !== 0 ? "100755" : "100644";
  return stats.isDirectory() ? "040000" : "other";
}

/**
 * The first entry of the tree at `root` that `expected` (paths as latin1 keys) does not account for: a
 * file, symlink or directory that is neither expected nor above an expected entry. The `.git` marker at the
 * root is the cache's own.
 */
function findExtra(root: string, expected: Set<string>): SlotDifference | undefined {
  const directories = new Set<string>();
  for (const path of expected) {
    for (let slash = path.indexOf("/"); slash >= 0; slash = path.indexOf("/", slash + 1)) {
      directories.add(path.slice(0, slash));
    }
  }
  const pending: Buffer[] = [Buffer.alloc(0)];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    const absolute = dir.length === 0 ? Buffer.from(root) : Buffer.concat([Buffer.from(root), SLASH, dir]);
    let names: Dirent<Buffer>[];
    try {
      names = readdirSync(absolute, { encoding: "buffer", withFileTypes: true });
    } catch (error) {
      // Gone since the entries below it were checked: the slot is being moved away.
      if (codeOf(error) === "ENOENT") return { path: dir.toString("utf8") || ".", kind: "missing" };
      throw error;
    }
    for (const entry of names) {
      const name = entry.name;
      if (dir.length === 0 && name.toString("latin1") === MARKER_DIR) continue;
      const path = dir.length === 0 ? name : Buffer.concat([dir, SLASH, name]);
      const key = path.toString("latin1");
      if (entry.isDirectory() && directories.has(key)) pending.push(path);
      else if (!expected.has(key))
        return { path: path.toString("utf8"), kind: "extra", found: kindName(entry) };
    }
  }
  return undefined;
}

function kindName(entry: {
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isFile(): boolean;
}): EntryMode | string {
  if (entry.isDirectory()) return "040000";
  if (entry.isSymbolicLink()) return "120000";
  return entry.isFile() ? "file" : "other";
}
