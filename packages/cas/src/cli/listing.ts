import { formatAge, formatCount, formatQuantity, formatSize } from "./units.js";

/** One entry of a cache, as an `ls` shows it. */
export interface ListedEntry {
  bytes: number;
  /** When it was last used, ms since the epoch. */
  lastUsedMs: number;
  /** What names it: a commit, a fingerprint. */
  key: string;
  path: string;
}

/**
 * One line of an `ls`, with the same columns in both tools: the size (right-aligned), the last use, the key
 * and the path, separated by two spaces, e.g. ` 20.0 MiB  5 min ago     1a2b3c…  /home/me/.cache/…`.
 */
export function formatEntryLine(entry: ListedEntry, now: number = Date.now()): string {
  const size = formatSize(entry.bytes).padStart(10);
  return `${size}  ${formatAge(now - entry.lastUsedMs).padEnd(12)}  ${entry.key}  ${entry.path}`;
}

/** What both tools count as debris: its size, and whether a `clean` would act on it now. */
export interface DebrisFigures {
  bytes: number;
  stale: boolean;
}

/**
 * The debris of a cache in one sentence, or undefined when there is none: `debris: 2 items, 44.0 MiB (1
 * stale, 40.0 MiB: run 'cas-baseline clean')`. Debris that is not stale may belong to a process at work.
 */
export function describeDebris(tool: string, debris: readonly DebrisFigures[]): string | undefined {
  if (debris.length === 0) return undefined;
  const sum = (items: readonly DebrisFigures[]) => items.reduce((total, item) => total + item.bytes, 0);
  const stale = debris.filter((item) => item.stale);
  const cleanable =
    stale.length === 0
      ? "none stale yet: it may belong to a run in progress"
      : `${formatCount(stale.length)} stale, ${formatSize(sum(stale))}: run '${tool} clean'`;
  return `debris: ${formatQuantity(debris.length, "item")}, ${formatSize(sum(debris))} (${cleanable})`;
}
