import { lstat } from "node:fs/promises";
import type { EntryStore } from "@cas-stage/cas";
import { asStageCacheError, codeOf } from "./errors.js";
import { type CacheEntry, listEntries } from "./evict.js";
import type { Layout } from "./layout.js";
import { type SlotProblem, verifySlot } from "./verify-tree.js";

/** Options of `StageCache.verify`. */
export interface VerifyOptions {
  /** Move every bad entry aside (through the eviction path), so that the next stage of it copies again. */
  fix?: boolean;
  /** Aborting stops the check between two reads and rejects with `signal.reason`; nothing is changed. */
  signal?: AbortSignal;
}

/** The first path, in byte order, where an entry differs from what its writer recorded. */
export interface EntryDifference {
  /** Relative to the entry, `/`-separated; the sentinel's name for a `manifest` problem. */
  path: string;
  /**
   * `missing` (recorded, not there), `extra` (there, not recorded), `type` (a file where a directory was,
   * a symlink, …), `size`, `content`, `mode` (permission bits); `manifest` when the sentinel records no
   * manifest (written by an older version or another writer) or a damaged one.
   */
  problem: SlotProblem;
  /** What the record holds there, for people. */
  expected: string;
  /** What the entry holds there, for people. */
  found: string;
}

/** One entry as {@link verifyEntries} found it. */
export interface VerifiedEntry extends CacheEntry {
  /** `ok`: exactly what was recorded; `bad`: see `difference`; `gone`: evicted or replaced while checked. */
  status: "ok" | "bad" | "gone";
  difference?: EntryDifference;
  /** With `fix`: the bad entry was moved aside. */
  fixed?: boolean;
}

/** What `StageCache.verify` found (and, with `fix`, did). */
export interface VerifyResult {
  /** Every complete entry, most recently used first. */
  entries: VerifiedEntry[];
  /** How many entries are `bad`. */
  bad: number;
  /** How many bad entries were moved aside. */
  fixed: number;
  /** Bytes of file content read and hashed: the recorded size of every entry that was not `gone`. */
  checkedBytes: number;
}

/** @internal Test seam: awaited after an entry was read and compared, before it is judged. */
export interface VerifyHooks {
  afterCheck?: (slot: string) => unknown;
}

/**
 * Checks every complete entry under `layout` against the manifest its sentinel records (`verifySlot`:
 * the same directories and files and nothing else, each file's size, content hash and permission bits),
 * one entry at a time, and reports the first differing path of each bad one. Reads only, unless `fix`:
 * a bad entry is then moved aside with `store.evict(…, { force: true })`, the one-rename eviction path,
 * so no reader ever sees it half-removed and the next stage rebuilds it. An entry that was evicted or
 * replaced while it was checked (its slot directory is another one afterwards) is reported `gone`, never
 * `bad`, and never moved.
 *
 * Throws the filesystem error (a `StageCacheError` with its code) when the root cannot be listed, an entry
 * cannot be read, or a bad entry cannot be moved (it then stays whole); `signal.reason` on abort.
 */
export async function verifyEntries(
  layout: Layout,
  store: EntryStore,
  options: VerifyOptions = {},
  hooks: VerifyHooks = {},
): Promise<VerifyResult> {
  const { signal } = options;
  const listed = await listEntries(layout);
  listed.sort((a, b) => b.lastUsedMs - a.lastUsedMs);
  const result: VerifyResult = { entries: [], bad: 0, fixed: 0, checkedBytes: 0 };
  for (const entry of listed) {
    signal?.throwIfAborted();
    const identity = await identityOf(entry.path);
    let verification: Awaited<ReturnType<typeof verifySlot>> | undefined;
    try {
      verification = await verifySlot(entry.path, signal ? { signal } : {});
    } catch (error) {
      signal?.throwIfAborted();
      // The slot or its sentinel gone: an eviction took it meanwhile.
      if (codeOf(error) !== "ENOENT" && codeOf(error) !== "ENOTDIR") throw error;
    }
    await hooks.afterCheck?.(entry.path);
    const unchanged = identity !== undefined && (await identityOf(entry.path)) === identity;
    if (verification === undefined || (!verification.ok && !unchanged)) {
      result.entries.push({ ...entry, status: "gone" });
      continue;
    }
    result.checkedBytes += entry.bytes;
    if (verification.ok) {
      result.entries.push({ ...entry, status: "ok" });
      continue;
    }
    const { path, problem, expected, found } = verification;
    const verified: VerifiedEntry = {
      ...entry,
      status: "bad",
      difference: { path, problem, expected, found },
    };
    result.bad++;
    if (options.fix) {
      try {
        verified.fixed = await store.evict(entry.path, entry.lastUsedMs, { force: true });
      } catch (error) {
        throw asStageCacheError(error, entry.path);
      }
      if (verified.fixed) result.fixed++;
    }
    result.entries.push(verified);
  }
  return result;
}

/**
 * What tells one slot directory from another that replaced it: the inode number alone can be reused at once
 * by a rebuild, but a rebuilt slot was renamed into place later, which sets its ctime.
 */
async function identityOf(slot: string): Promise<string | undefined> {
  const stats = await lstat(slot, { bigint: true }).catch(() => undefined);
  return stats ? `${stats.ino}:${stats.ctimeNs}` : undefined;
}
