import { resolve } from "node:path";
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
} from "@cas-stage/cas/cli";
import { cleanBaselines } from "../clean.js";
import { baselinesDir } from "../layout.js";
import { listBaselines } from "../list.js";
import { pruneBaselines, removeBaseline } from "../prune.js";
import type { CachedBaseline, DebrisEntry } from "../scan.js";
import { type VerifiedSlot, verifyBaselines } from "../verify.js";
import { cacheRootOf } from "./cache-root.js";

// The cache commands of cas-baseline: ls, prune, rm, clean, verify. Each prints its result on stdout (one
// path or entry per line, so `| wc -l` counts them) or as JSON, and its summary on stderr.

/** A cached baseline as the JSON output shows it. */
function entryJson(entry: CachedBaseline) {
  return {
    commit: entry.commit,
    path: entry.path,
    bytes: entry.bytes,
    files: entry.files,
    lastUsed: new Date(entry.lastUsedMs).toISOString(),
  };
}

/** Debris as the JSON output shows it. */
function debrisJson(debris: DebrisEntry) {
  return { kind: debris.kind, path: debris.path, bytes: debris.bytes, stale: debris.stale };
}

const entryLine = (entry: CachedBaseline, now: number) =>
  formatEntryLine(
    { bytes: entry.bytes, lastUsedMs: entry.lastUsedMs, key: entry.commit, path: entry.path },
    now,
  );

/** `cas-baseline ls` */
export async function ls({ values, out }: CommandContext): Promise<void> {
  const cacheRoot = await cacheRootOf(values);
  const listing = await listBaselines(cacheRoot);
  const now = Date.now();
  out.result(
    listing.slots.map((entry) => entryLine(entry, now)),
    {
      root: baselinesDir(cacheRoot),
      entries: listing.slots.map(entryJson),
      debris: listing.debris.map(debrisJson),
      totalBytes: listing.totalBytes,
      debrisBytes: listing.debrisBytes,
    },
  );
  out.note(
    `${formatQuantity(listing.slots.length, "baseline")}, ${formatSize(listing.totalBytes)} in ${baselinesDir(cacheRoot)}`,
  );
  const debris = describeDebris("cas-baseline", listing.debris);
  if (debris) out.note(debris);
}

/** `cas-baseline prune` */
export async function prune({ values, out }: CommandContext): Promise<void> {
  const cacheRoot = await cacheRootOf(values);
  const olderThanMs = optionValue(values, "older-than", parseDuration);
  const maxBytes = optionValue(values, "max-size", parseSize);
  const minAgeMs = optionValue(values, "min-age", parseDuration);
  const dryRun = values["dry-run"] === true;
  const report = await pruneBaselines(cacheRoot, {
    olderThanMs,
    maxBytes,
    minAgeMs,
    dryRun,
    onWarning: out.warn,
  });
  out.result([...report.removed.map((entry) => entry.path), ...report.debris.map((debris) => debris.path)], {
    dryRun,
    removed: report.removed.map(entryJson),
    debris: report.debris.map(debrisJson),
    repaired: report.repaired.map(debrisJson),
    freedBytes: report.freedBytes,
    remainingBytes: report.remainingBytes,
  });
  const [removes, frees] = dryRun ? ["would remove", "freeing"] : ["removed", "freed"];
  const debris =
    report.debris.length > 0 ? ` and ${formatQuantity(report.debris.length, "piece")} of debris` : "";
  out.note(
    `${removes} ${formatQuantity(report.removed.length, "baseline")}${debris}, ${frees} ${formatSize(report.freedBytes)}; ${formatSize(report.remainingBytes)} of baselines remain in ${baselinesDir(cacheRoot)}`,
  );
  if (olderThanMs === undefined && maxBytes === undefined) {
    out.note("no limit given (--older-than, --max-size): no baseline was removed, only debris");
  }
  if (report.repaired.length > 0) {
    out.note(`gave back ${formatQuantity(report.repaired.length, "baseline")} whose removal was interrupted`);
  }
}

/** `cas-baseline rm <commit>` */
export async function rm({ values, positionals, out }: CommandContext): Promise<void> {
  const cacheRoot = await cacheRootOf(values);
  const removed = await removeBaseline(cacheRoot, positionals[0] as string, {
    force: values.force === true,
    onWarning: out.warn,
  }).catch((error: unknown) => {
    // The library names its option; the command line has a flag for it.
    if (error instanceof Error)
      error.message = error.message.replace(/; pass force to /, "; pass --force to ");
    throw error;
  });
  out.result(removed.path, { removed: entryJson(removed) });
  out.note(`removed baseline ${removed.commit}, ${formatSize(removed.bytes)}`);
}

/** `cas-baseline clean` */
export async function clean({ values, out }: CommandContext): Promise<void> {
  const cacheRoot = await cacheRootOf(values);
  const staleAfterMs = optionValue(values, "older-than", parseDuration);
  const dryRun = values["dry-run"] === true;
  const report = await cleanBaselines(cacheRoot, { staleAfterMs, dryRun, onWarning: out.warn });
  out.result(
    report.removed.map((debris) => debris.path),
    {
      dryRun,
      removed: report.removed.map(debrisJson),
      repaired: report.repaired.map(debrisJson),
      freedBytes: report.freedBytes,
    },
  );
  const [removes, frees, gives] = dryRun
    ? ["would remove", "freeing", "would give back"]
    : ["removed", "freed", "gave back"];
  out.note(
    `${removes} ${formatQuantity(report.removed.length, "piece")} of debris, ${frees} ${formatSize(report.freedBytes)} in ${baselinesDir(cacheRoot)}`,
  );
  if (report.repaired.length > 0) {
    out.note(`${gives} ${formatQuantity(report.repaired.length, "baseline")} whose removal was interrupted`);
  }
}

/** `cas-baseline verify`: exits 1 when a bad baseline remains. */
export async function verify({ values, signal, out }: CommandContext): Promise<number> {
  const cacheRoot = await cacheRootOf(values);
  const explicitRepo = typeof values.repo === "string" ? resolve(values.repo) : undefined;
  const repo = explicitRepo ?? (await repositoryOfCwd(signal));
  const fix = values.fix === true;
  // A shared cache holds baselines of many repositories: that the current directory's repository lacks a
  // commit is expected, and the report says what each baseline was checked against.
  const onWarning = (message: string, path: string) => {
    if (explicitRepo === undefined && message.endsWith("checking it against its manifest")) return;
    out.warn(message, path);
  };
  const report = await verifyBaselines(cacheRoot, { repo, fix, signal, onWarning });
  const bad = report.slots.filter((slot) => slot.status === "bad");
  out.result(bad.map(badLine), {
    entries: report.slots.map((slot) => ({
      ...entryJson(slot),
      status: slot.status,
      against: slot.against,
      ...(slot.difference ? { difference: slot.difference } : {}),
      ...(slot.fixed === undefined ? {} : { fixed: slot.fixed }),
    })),
    bad: report.bad,
    fixed: report.fixed,
    checkedBytes: report.checkedBytes,
  });
  const byGit = report.slots.filter((slot) => slot.against === "git").length;
  const against =
    byGit === 0
      ? "the manifests their builds recorded"
      : byGit === report.slots.length
        ? `git (${repo})`
        : `git (${repo}) or, for ${report.slots.length - byGit} of them, their manifests`;
  const found =
    report.bad === 0
      ? "all whole"
      : `${report.bad} bad${fix ? `, ${report.fixed} moved aside` : " (run 'cas-baseline verify --fix' to move them aside)"}`;
  out.note(
    `checked ${formatQuantity(report.slots.length, "baseline")} (${formatSize(report.checkedBytes)}) against ${against}: ${found}`,
  );
  return report.bad > report.fixed ? EXIT.failure : EXIT.ok;
}

function badLine(slot: VerifiedSlot): string {
  const difference = slot.difference;
  const where = difference ? `${difference.kind} ${difference.path}` : "differs";
  const detail = [
    difference?.expected === undefined ? "" : `expected ${difference.expected}`,
    difference?.found === undefined ? "" : `found ${difference.found}`,
  ]
    .filter(Boolean)
    .join(", ");
  return `${slot.commit}  ${where}${detail ? ` (${detail})` : ""}${slot.fixed ? ", moved aside" : ""}`;
}

/** The top level of the repository around the current directory, or undefined outside one. */
async function repositoryOfCwd(signal: AbortSignal): Promise<string | undefined> {
  const { findRepoRoot } = await import("../repo.js");
  return findRepoRoot(process.cwd(), signal).catch(() => undefined);
}
