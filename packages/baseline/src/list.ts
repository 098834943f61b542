import { DAY_MS, nonNegative } from "./clean.js";
import { type CachedBaseline, type DebrisEntry, scanCache } from "./scan.js";
import { openStore } from "./store.js";

export interface BaselineListing {
  /** The complete slots, most recently used first. */
  slots: CachedBaseline[];
  /** Everything else the cache holds that is its own (see {@link DebrisEntry}), largest first. */
  debris: DebrisEntry[];
  /** Bytes of the slots. */
  totalBytes: number;
  /** Bytes of the debris. */
  debrisBytes: number;
}

/**
 * What the baseline cache under `cacheRoot` holds: each complete slot (commit, bytes and files as recorded
 * at build time, last use, path) and each piece of debris with its size and whether it is `stale` (what
 * {@link cleanBaselines} with the same `staleAfterMs`, default 24 hours, would remove). Changes nothing.
 * A missing cache gives empty lists. Throws {@link BaselineError} with the filesystem's code when the cache
 * cannot be read.
 */
export async function listBaselines(
  cacheRoot: string,
  options: { staleAfterMs?: number | undefined } = {},
): Promise<BaselineListing> {
  const staleAfterMs = nonNegative("listBaselines: staleAfterMs", options.staleAfterMs ?? DAY_MS);
  const scan = await scanCache(cacheRoot, openStore(cacheRoot), staleAfterMs);
  const sum = (entries: { bytes: number }[]) => entries.reduce((total, entry) => total + entry.bytes, 0);
  return {
    slots: scan.slots.sort((a, b) => b.lastUsedMs - a.lastUsedMs),
    debris: scan.debris.sort((a, b) => b.bytes - a.bytes),
    totalBytes: sum(scan.slots),
    debrisBytes: sum(scan.debris),
  };
}
