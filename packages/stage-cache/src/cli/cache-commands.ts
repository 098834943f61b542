import { pathExists } from "@cas-stage/cas";
import {
  type CommandContext,
  describeDebris,
  EXIT,
  formatEntryLine,
  formatQuantity,
  formatSize,
  optionValue,
  parseDuration,
  parseSize,
  UsageError,
} from "@cas-stage/cas/cli";
import { CasError } from "@cas-stage/cas/errors";
import { StageCache, type StageCacheOptions } from "../cache.js";
import type { Debris } from "../debris.js";
import type { CacheEntry } from "../evict.js";
import { FINGERPRINT_RULE, isValidFingerprint, Layout } from "../layout.js";
import type { VerifiedEntry } from "../verify.js";
import { cacheRootOf } from "./cache-root.js";

// The cache commands of cas-stage-cache: ls, sweep, rm, clean, verify. Each prints its result on stdout (one
// path or entry per line, so `| wc -l` counts them) or as JSON, and its summary on stderr.

/** An entry as the JSON output shows it. */
function entryJson(entry: CacheEntry) {
  return {
    fingerprint: entry.fingerprint,
    path: entry.path,
    bytes: entry.bytes,
    lastUsed: new Date(entry.lastUsedMs).toISOString(),
  };
}

/** Debris as the JSON output shows it. */
function debrisJson(debris: Debris) {
  return { kind: debris.kind, path: debris.path, bytes: debris.bytes, stale: debris.stale };
}

/** What the cache commands use of a cache. */
type CacheView = Pick<StageCache, "root" | "list" | "sweep" | "clean" | "verify" | "remove">;

/**
 * Opens the cache of the command line, runs `work` on it, and closes it whatever happens. A root that does
 * not exist is not created (`StageCache.open` would): `work` then gets an empty cache, so that looking at,
 * cleaning or checking a cache that was never used changes nothing on disk.
 */
async function withCache<T>(
  context: CommandContext,
  options: Omit<StageCacheOptions, "root" | "onWarning">,
  work: (cache: CacheView) => Promise<T>,
): Promise<T> {
  const root = await cacheRootOf(context.values);
  if (!(await pathExists(root))) return work(emptyCache(root, options.maxBytes ?? 0));
  const cache = await StageCache.open({ ...options, root, onWarning: context.out.warn });
  try {
    return await work(cache);
  } finally {
    await cache.close();
  }
}

/** A cache with nothing in it, at a root that does not exist. */
function emptyCache(root: string, maxBytes: number): CacheView {
  return {
    root,
    list: async () => ({ entries: [], debris: [] }),
    sweep: async () => ({ removed: [], freedBytes: 0, totalBytes: 0, measuredOnly: maxBytes === 0 }),
    clean: async () => ({ removed: [], freedBytes: 0, repaired: [] }),
    verify: async () => ({ entries: [], bad: 0, fixed: 0, checkedBytes: 0 }),
    remove: async (fingerprint: string) => ({
      fingerprint,
      path: new Layout(root).slotPath(fingerprint),
      removed: false,
      reason: "not-found" as const,
      bytes: 0,
    }),
  };
}

/** `cas-stage-cache ls` */
export async function ls(context: CommandContext): Promise<void> {
  const { out } = context;
  await withCache(context, { cleanOnOpen: false }, async (cache) => {
    const listing = await cache.list();
    const now = Date.now();
    const sum = (items: readonly { bytes: number }[]) => items.reduce((total, item) => total + item.bytes, 0);
    out.result(
      listing.entries.map((entry) =>
        formatEntryLine(
          { bytes: entry.bytes, lastUsedMs: entry.lastUsedMs, key: entry.fingerprint, path: entry.path },
          now,
        ),
      ),
      {
        root: cache.root,
        entries: listing.entries.map(entryJson),
        debris: listing.debris.map(debrisJson),
        totalBytes: sum(listing.entries),
        debrisBytes: sum(listing.debris),
      },
    );
    out.note(
      `${formatQuantity(listing.entries.length, "entry", "entries")}, ${formatSize(sum(listing.entries))} in ${cache.root}`,
    );
    const debris = describeDebris("cas-stage-cache", listing.debris);
    if (debris) out.note(debris);
  });
}

/** `cas-stage-cache sweep` */
export async function sweep(context: CommandContext): Promise<void> {
  const { values, out } = context;
  const maxBytes = optionValue(values, "max-size", parseSize) ?? 0;
  const minAgeMs = optionValue(values, "min-age", parseDuration);
  const dryRun = values["dry-run"] === true;
  const options = { maxBytes, ...(minAgeMs === undefined ? {} : { minAgeMs }), cleanOnOpen: !dryRun };
  await withCache(context, options, async (cache) => {
    const result = await cache.sweep({ dryRun });
    out.result(result.removed, { dryRun, ...result });
    if (result.measuredOnly) {
      out.note(
        `nothing removed: no size limit (--max-size absent or 0); ${formatSize(result.totalBytes)} in complete entries in ${cache.root}`,
      );
      return;
    }
    const [removes, frees] = dryRun ? ["would remove", "freeing"] : ["removed", "freed"];
    const overCap =
      result.totalBytes > maxBytes
        ? ` (over ${formatSize(maxBytes)}: the rest was used within --min-age ${values["min-age"] ?? "10m"})`
        : "";
    out.note(
      `${removes} ${formatQuantity(result.removed.length, "entry", "entries")}, ${frees} ${formatSize(result.freedBytes)}; ${formatSize(result.totalBytes)} remain${overCap}`,
    );
  });
}

/** `cas-stage-cache rm <fingerprint>` */
export async function rm(context: CommandContext): Promise<void> {
  const { values, positionals, out } = context;
  const fingerprint = positionals[0] as string;
  if (!isValidFingerprint(fingerprint)) {
    throw new UsageError(`invalid fingerprint ${JSON.stringify(fingerprint)}: ${FINGERPRINT_RULE}`);
  }
  await withCache(context, {}, async (cache) => {
    const result = await cache.remove(fingerprint, { force: values.force === true });
    if (!result.removed) {
      const used = result.lastUsedMs === undefined ? 0 : Math.round((Date.now() - result.lastUsedMs) / 1000);
      const [code, why] =
        result.reason === "recently-used"
          ? [
              "EBUSY",
              `was used ${used} s ago, within the minimum age of 10 minutes, so a run may be reading it; pass --force to remove it anyway`,
            ]
          : result.reason === "in-use"
            ? ["EBUSY", "was used while it was being removed, so it stays; pass --force to remove it anyway"]
            : ["ENOENT", `is not in the cache ${cache.root}`];
      throw new CasError(code, `entry ${fingerprint} ${why}`, { path: result.path });
    }
    out.result(result.path, {
      removed: {
        fingerprint,
        path: result.path,
        bytes: result.bytes,
        ...(result.lastUsedMs === undefined ? {} : { lastUsed: new Date(result.lastUsedMs).toISOString() }),
      },
    });
    out.note(`removed entry ${fingerprint}, ${formatSize(result.bytes)}`);
  });
}

/** `cas-stage-cache clean` */
export async function clean(context: CommandContext): Promise<void> {
  const { values, out } = context;
  const staleAfterMs = optionValue(values, "older-than", parseDuration);
  const dryRun = values["dry-run"] === true;
  const options = { cleanOnOpen: false, ...(staleAfterMs === undefined ? {} : { staleAfterMs }) };
  await withCache(context, options, async (cache) => {
    const result = await cache.clean({ dryRun });
    out.result(
      result.removed.map((debris) => debris.path),
      {
        dryRun,
        removed: result.removed.map(debrisJson),
        repaired: result.repaired.map(debrisJson),
        freedBytes: result.freedBytes,
      },
    );
    const [removes, frees, gives] = dryRun
      ? ["would remove", "freeing", "would give back"]
      : ["removed", "freed", "gave back"];
    out.note(
      `${removes} ${formatQuantity(result.removed.length, "piece")} of debris, ${frees} ${formatSize(result.freedBytes)} in ${cache.root}`,
    );
    if (result.repaired.length > 0) {
      out.note(
        `${gives} ${formatQuantity(result.repaired.length, "entry", "entries")} whose eviction was interrupted`,
      );
    }
  });
}

/** `cas-stage-cache verify`: exits 1 when a bad entry remains. */
export async function verify(context: CommandContext): Promise<number> {
  const { values, signal, out } = context;
  const fix = values.fix === true;
  return withCache(context, { cleanOnOpen: false }, async (cache) => {
    const result = await cache.verify({ fix, signal });
    out.result(result.entries.filter((entry) => entry.status === "bad").map(badLine), {
      entries: result.entries.map((entry) => ({
        ...entryJson(entry),
        status: entry.status,
        ...(entry.difference ? { difference: entry.difference } : {}),
        ...(entry.fixed === undefined ? {} : { fixed: entry.fixed }),
      })),
      bad: result.bad,
      fixed: result.fixed,
      checkedBytes: result.checkedBytes,
    });
    const found =
      result.bad === 0
        ? "all whole"
        : `${result.bad} bad${fix ? `, ${result.fixed} moved aside` : " (run 'cas-stage-cache verify --fix' to move them aside)"}`;
    out.note(
      `checked ${formatQuantity(result.entries.length, "entry", "entries")} (${formatSize(result.checkedBytes)}) against the manifests their copies recorded: ${found}`,
    );
    return result.bad > result.fixed ? EXIT.failure : EXIT.ok;
  });
}

function badLine(entry: VerifiedEntry): string {
  const difference = entry.difference;
  const where = difference ? `${difference.problem} ${difference.path}` : "differs";
  const detail = difference ? ` (expected ${difference.expected}, found ${difference.found})` : "";
  return `${entry.fingerprint}  ${where}${detail}${entry.fixed ? ", moved aside" : ""}`;
}
