import type { EntryStore } from "./entry-store.js";

/** A complete entry a policy may remove, as its store listed it. */
export interface EvictionCandidate {
  slot: string;
  /** What the entry holds, as recorded when it was built. */
  bytes: number;
  /** Its sentinel's mtime when listed. */
  lastUsedMs: number;
}

/** Which entries a pass removes. With neither limit, nothing is removed and the pass only measures. */
export interface EvictionPolicy {
  /** Remove least recently used entries while the total exceeds this. 0 or absent: no size limit. */
  maxBytes?: number | undefined;
  /** Remove every entry not used for at least this long. Absent: no age limit. */
  olderThanMs?: number | undefined;
  /** Never remove an entry used more recently than this, whatever the limits say. Default 0. */
  minAgeMs?: number | undefined;
  /** Report what would go without removing anything. */
  dryRun?: boolean | undefined;
}

export interface EvictionReport {
  /** The entries removed (or, in a dry run, that would be), least recently used first. */
  removed: EvictionCandidate[];
  freedBytes: number;
  /** Bytes of the candidates that remain. */
  remainingBytes: number;
}

/**
 * Removes entries least recently used first, through {@link EntryStore.evict} (so an entry a hit touched
 * since it was listed stays): every entry unused for `olderThanMs`, then more while the total exceeds
 * `maxBytes`; never one used within `minAgeMs`. An entry that could not be removed (touched, or taken by
 * another process) counts as remaining, and the pass moves on to the next one. Throws what `evict` throws.
 */
export async function evictLeastRecentlyUsed(
  store: EntryStore,
  candidates: readonly EvictionCandidate[],
  policy: EvictionPolicy,
  now: number = Date.now(),
): Promise<EvictionReport> {
  const maxBytes = policy.maxBytes ?? 0;
  const minAgeMs = policy.minAgeMs ?? 0;
  const oldestFirst = [...candidates].sort((a, b) => a.lastUsedMs - b.lastUsedMs);
  let remainingBytes = oldestFirst.reduce((sum, entry) => sum + entry.bytes, 0);
  const removed: EvictionCandidate[] = [];
  for (const entry of oldestFirst) {
    const age = now - entry.lastUsedMs;
    // Oldest first: once one entry is too young to go, or needed by neither limit, so is every later one.
    if (age < minAgeMs) break;
    const expired = policy.olderThanMs !== undefined && age >= policy.olderThanMs;
    const overCap = maxBytes > 0 && remainingBytes > maxBytes;
    if (!expired && !overCap) break;
    if (!policy.dryRun && !(await store.evict(entry.slot, entry.lastUsedMs))) continue;
    removed.push(entry);
    remainingBytes -= entry.bytes;
  }
  const freedBytes = removed.reduce((sum, entry) => sum + entry.bytes, 0);
  return { removed, freedBytes, remainingBytes };
}
