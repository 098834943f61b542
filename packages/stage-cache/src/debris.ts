import { lstatSync, readFileSync } from "node:fs";
import { lstat, rmdir, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  type EntryStore,
  isAbandonedTrash,
  isStageTempName,
  messageOf,
  sweepStaleTemps,
} from "@cas-stage/cas";
import { listSlots, measureTree, readdirOrEmptySync } from "./evict.js";
import { type Layout, STAGE_COMPLETE_SENTINEL } from "./layout.js";
import { isAbandonedScratch, removeScratch } from "./scratch.js";

/**
 * What a cache root holds besides complete entries:
 *
 * | kind | what | stale (what `clean` does) when |
 * |---|---|---|
 * | `temp` | a build's temp dir in `.staging/`: in progress, or left by a killed process | older than `staleAfterMs` (removed) |
 * | `scratch` | a scratch copy in `.scratch/` | its owner is not known to run and it went unused for `staleAfterMs` (removed; see scratch.ts) |
 * | `trash` | an evicted entry in `.trash/` on its way out | no evictor can restore it any more (removed) |
 * | `claimed` | a slot whose evictor claimed it: an eviction in progress, or interrupted | the claim is older than the claim grace period (the entry, whole, is given back) |
 * | `incomplete` | a slot without sentinel or claim: a foreign or older writer's | nothing in it changed for `staleAfterMs` (moved to the trash and removed) |
 *
 * Debris that is not stale may belong to a process at work and is left alone.
 */
export type DebrisKind = "temp" | "scratch" | "trash" | "claimed" | "incomplete";

export interface Debris {
  kind: DebrisKind;
  path: string;
  /** Bytes of file content under it; 0 when it was not measured. */
  bytes: number;
  /** Whether `clean` acts on it now (see {@link DebrisKind}). */
  stale: boolean;
}

/** The debris policy of one cache object. */
export interface DebrisContext {
  layout: Layout;
  store: EntryStore;
  /** Temps, scratch copies and incomplete slots older than this are stale (0: all of them). */
  staleAfterMs: number;
  /** Trash older than this can no longer be restored by its evictor. */
  trashGraceMs: number;
  onWarning: (message: string, path: string) => void;
}

/** What {@link findDebris} found, and how many slots it looked at (undefined when it did not look). */
export interface FoundDebris {
  debris: Debris[];
  slots: number | undefined;
}

/**
 * Finds the debris under a root, with sizes when `measure` is set (a walk of each; incomplete slots are
 * walked either way, since their staleness is the newest mtime in them). Temps, scratch copies and trash
 * live in private directories and cost one listing each; claimed and incomplete slots are found only by
 * looking at every slot, which `slots: false` leaves out. Reads only; never throws for debris that
 * vanishes meanwhile. Throws the filesystem error when the root cannot be listed.
 */
export async function findDebris(
  context: DebrisContext,
  options: { measure: boolean; slots?: boolean },
): Promise<FoundDebris> {
  const { layout, store, staleAfterMs, trashGraceMs } = context;
  const now = Date.now();
  const isOld = (mtimeMs: number) => staleAfterMs === 0 || mtimeMs <= now - staleAfterMs;
  const size = async (path: string) => (options.measure ? (await measureTree(path)).bytes : 0);
  const found: Debris[] = [];

  // The private directories are listed synchronously: they hold nothing, or a few items, nearly always.
  for (const entry of readdirOrEmptySync(layout.stagingDir)) {
    if (!entry.isDirectory() || !isStageTempName(entry.name)) continue;
    const path = join(layout.stagingDir, entry.name);
    const stats = await lstat(path).catch(() => undefined);
    if (stats) found.push({ kind: "temp", path, bytes: await size(path), stale: isOld(stats.mtimeMs) });
  }
  for (const entry of readdirOrEmptySync(layout.scratchDir)) {
    const path = join(layout.scratchDir, entry.name);
    const stale = await isAbandonedScratch(path, staleAfterMs, now);
    found.push({ kind: "scratch", path, bytes: await size(path), stale });
  }
  const slots = options.slots === false ? undefined : listSlots(layout);
  for (const slot of slots ?? []) {
    // Nearly every slot is a complete entry: one synchronous look at its sentinel says so (as `inspect`
    // would), and only the others are inspected.
    if (sentinelIsFile(slot.path)) continue;
    const state = await store.inspect(slot.path);
    if (state.state === "claimed") {
      const stale = state.ageMs >= store.claimGraceMs;
      found.push({ kind: "claimed", path: slot.path, bytes: await size(slot.path), stale });
    } else if (state.state === "incomplete") {
      const { bytes, newestMtimeMs } = await measureTree(slot.path);
      found.push({ kind: "incomplete", path: slot.path, bytes, stale: isOld(newestMtimeMs) });
    }
  }
  for (const entry of readdirOrEmptySync(layout.trashDir)) {
    const path = join(layout.trashDir, entry.name);
    found.push({
      kind: "trash",
      path,
      bytes: await size(path),
      stale: isAbandonedTrash(entry.name, trashGraceMs, now),
    });
  }
  return { debris: found, slots: slots?.length };
}

function sentinelIsFile(slot: string): boolean {
  try {
    return lstatSync(join(slot, STAGE_COMPLETE_SENTINEL)).isFile();
  } catch {
    return false;
  }
}

/**
 * `open()` looks at every slot (for claimed and incomplete ones) only while that is cheap: on every call
 * while the root held at most this many slots when last looked at...
 */
export const SMALL_ROOT_SLOTS = 64;
/** ...and otherwise at most once per this interval per root (or per `staleAfterMs`, when shorter). */
export const SLOT_SCAN_INTERVAL_MS = 10 * 60_000;

/** The record of the last look at every slot of a large root, in `Layout.slotScanStamp`. */
interface SlotScanStamp {
  scannedAt: number;
  slots: number;
}

/**
 * Whether `open()` should look at every slot now (see {@link SMALL_ROOT_SLOTS}): yes unless the stamp of a
 * large root records a look within the interval. Never throws: a stamp that is missing, unreadable,
 * damaged or from the future means yes.
 *
 * Why skipping is safe: a slot is debris only when an evictor died while holding its claim, or a foreign
 * writer left it incomplete. Neither stops a reader: `stage()` of that fingerprint repairs the claim or
 * moves the debris aside itself, eviction passes give claims back, and `clean()` always looks at every
 * slot. Only the space they hold waits, for at most the interval.
 */
export function slotScanDue(context: DebrisContext, now = Date.now()): boolean {
  const stamp = readSlotScanStamp(context.layout);
  if (stamp === undefined || stamp.slots <= SMALL_ROOT_SLOTS) return true;
  const interval = Math.min(SLOT_SCAN_INTERVAL_MS, context.staleAfterMs);
  return stamp.scannedAt > now || now - stamp.scannedAt >= interval;
}

/**
 * Records a look at every slot of the root that found `slots` of them. Only a large root keeps a stamp (a
 * small one is looked at on every `open()` anyway); one that became small loses it. Never throws: without
 * a stamp (a root this user cannot write), the next `open()` looks again.
 */
export async function recordSlotScan(context: DebrisContext, slots: number, now = Date.now()): Promise<void> {
  const path = context.layout.slotScanStamp;
  if (slots <= SMALL_ROOT_SLOTS) {
    await unlink(path).catch(() => {});
    return;
  }
  const stamp: SlotScanStamp = { scannedAt: now, slots };
  await writeFile(path, `${JSON.stringify(stamp)}\n`).catch(() => {});
}

function readSlotScanStamp(layout: Layout): SlotScanStamp | undefined {
  try {
    const value: unknown = JSON.parse(readFileSync(layout.slotScanStamp, "utf8"));
    const { scannedAt, slots } = (value ?? {}) as Partial<SlotScanStamp>;
    return Number.isFinite(scannedAt) && Number.isFinite(slots)
      ? { scannedAt: scannedAt as number, slots: slots as number }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Acts on the stale items of `debris` (as {@link findDebris} listed them; others are ignored): removes
 * temps, scratch copies, trash and incomplete slots, gives claimed entries back. Temps, trash, claims and
 * incomplete slots are checked again as they go (by cas), so one that turned live meanwhile (a slot
 * completed by its writer, a claim resolved) stays; a scratch copy is not (its owner cannot come back to
 * life, and one judged by age alone is used by nobody who asked for it within `staleAfterMs`). Resolves to
 * what was removed and what was given back; a failure to remove goes to `onWarning` and never throws.
 */
export async function removeDebris(
  context: DebrisContext,
  debris: readonly Debris[],
): Promise<{ removed: Debris[]; repaired: Debris[] }> {
  const { layout, store, staleAfterMs, trashGraceMs, onWarning } = context;
  const stale = (kind: DebrisKind) => debris.filter((item) => item.stale && item.kind === kind);
  const removed: Debris[] = [];
  const repaired: Debris[] = [];

  if (stale("temp").length > 0) {
    try {
      const paths = await sweepStaleTemps(layout.stagingDir, { olderThanMs: staleAfterMs });
      removed.push(...matching("temp", paths, debris));
    } catch (error) {
      onWarning(`could not remove stale stage temps: ${messageOf(error)}`, layout.stagingDir);
    }
  }
  for (const item of stale("scratch")) {
    try {
      if (await removeScratch(item.path)) removed.push(item);
    } catch (error) {
      onWarning(`could not remove stale scratch copy: ${messageOf(error)}`, item.path);
    }
  }
  for (const item of stale("claimed")) {
    try {
      if (await store.repairClaim(item.path)) repaired.push(item);
    } catch (error) {
      onWarning(
        `could not give back an entry whose eviction was interrupted: ${messageOf(error)}`,
        item.path,
      );
    }
  }
  for (const item of stale("incomplete")) {
    try {
      // The same move aside a stage of this slot does: one rename into the trash, put back if it turned
      // out complete meanwhile.
      await store.makeWay(item.path);
      if ((await store.inspect(item.path)).state === "absent") {
        removed.push(item);
        await rmdir(dirname(item.path)).catch(() => {});
      }
    } catch (error) {
      onWarning(`could not remove an incomplete entry: ${messageOf(error)}`, item.path);
    }
  }
  if (stale("trash").length > 0) {
    const { paths } = await store.removeAbandonedTrash(trashGraceMs);
    removed.push(...matching("trash", paths, debris));
  }
  return { removed, repaired };
}

/** The listed items of `kind` at `paths`; a path removed that was not listed is reported unmeasured. */
function matching(kind: DebrisKind, paths: readonly string[], debris: readonly Debris[]): Debris[] {
  return paths.map(
    (path) =>
      debris.find((item) => item.kind === kind && item.path === path) ?? {
        kind,
        path,
        bytes: 0,
        stale: true,
      },
  );
}
