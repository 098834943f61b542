import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chattr, kernelTest } from "@cas-stage/test-support/kernel";
import { afterEach, describe, expect, it } from "vitest";
import { removeDebris } from "../src/clean.js";
import { cleanBaselines, listBaselines, materializeBaseline } from "../src/index.js";
import { CLAIM, SENTINEL, stagingDir, trashDir } from "../src/layout.js";
import { scanCache } from "../src/scan.js";
import { openStore } from "../src/store.js";
import { cacheNames, gitRepo, makeTempDir, removeTempDirs, setLastUse } from "./fixtures.js";

afterEach(removeTempDirs);

const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
const ago = (ms: number) => new Date(Date.now() - ms);

/** A cache with two complete slots and one piece of each kind of debris, young and stale. */
async function cacheWithDebris() {
  const repo = gitRepo();
  repo.write("a.txt", "a".repeat(100));
  const first = repo.commit("first");
  repo.write("b.txt", "b".repeat(50));
  const second = repo.commit("second");
  repo.write("c.txt", "c".repeat(25));
  const third = repo.commit("third");
  const cacheRoot = makeTempDir("cache");
  const baselines = join(cacheRoot, "baselines");
  const slot = async (base: string) => (await materializeBaseline({ path: repo.dir, base, cacheRoot })).dir;
  const firstSlot = await slot(first);
  const secondSlot = await slot(second);
  const claimedSlot = await slot(third);
  setLastUse(firstSlot, ago(HOUR));
  // An evictor claimed this slot and died (the claim keeps the sentinel's record).
  renameSync(join(claimedSlot, SENTINEL), join(claimedSlot, CLAIM));
  const make = (path: string, bytes: number, when?: Date) => {
    mkdirSync(path, { recursive: true });
    writeFileSync(join(path, "f"), "x".repeat(bytes));
    if (when) utimesSync(path, when, when);
    return path;
  };
  const paths = {
    staleTemp: make(join(stagingDir(cacheRoot), `${first}.tmp.aaaaaa`), 1, ago(2 * DAY)),
    youngTemp: make(join(stagingDir(cacheRoot), `${first}.tmp.bbbbbb`), 2),
    legacyTemp: make(join(baselines, `${second}.tmp.cccccc`), 4, ago(2 * DAY)),
    legacyTrash: make(join(baselines, `${second}.trash.00112233445566ff`), 8),
    youngTrash: make(join(trashDir(cacheRoot), `${first}.${Date.now().toString(36)}.0123456789ab`), 16),
    deleting: make(
      join(trashDir(cacheRoot), `${first}.${Date.now().toString(36)}.ba9876543210.deleting`),
      32,
    ),
    // A 0.1.0 slot: a tree without a sentinel, last used three days ago.
    incomplete: make(join(baselines, "0".repeat(40)), 64, ago(3 * DAY)),
  };
  return { repo, cacheRoot, first, second, third, firstSlot, secondSlot, claimedSlot, paths };
}

describe("listBaselines", () => {
  it("lists complete slots most recently used first, and every piece of debris with its size and staleness", async () => {
    const cache = await cacheWithDebris();
    const listing = await listBaselines(cache.cacheRoot);
    expect(listing.slots).toEqual([
      {
        commit: cache.second,
        path: cache.secondSlot,
        bytes: 50 + 100,
        files: 2,
        lastUsedMs: expect.any(Number),
      },
      { commit: cache.first, path: cache.firstSlot, bytes: 100, files: 1, lastUsedMs: expect.any(Number) },
    ]);
    expect(listing.totalBytes).toBe(250);
    const { paths } = cache;
    expect(listing.debris.map(({ kind, path, bytes, stale }) => ({ kind, path, bytes, stale }))).toEqual([
      { kind: "claim", path: cache.claimedSlot, bytes: 175, stale: false },
      { kind: "incomplete", path: paths.incomplete, bytes: 64, stale: true },
      { kind: "trash", path: paths.deleting, bytes: 32, stale: true },
      { kind: "trash", path: paths.youngTrash, bytes: 16, stale: false },
      { kind: "trash", path: paths.legacyTrash, bytes: 8, stale: true },
      { kind: "temp", path: paths.legacyTemp, bytes: 4, stale: true },
      { kind: "temp", path: paths.youngTemp, bytes: 2, stale: false },
      { kind: "temp", path: paths.staleTemp, bytes: 1, stale: true },
    ]);
    expect(listing.debrisBytes).toBe(175 + 64 + 32 + 16 + 8 + 4 + 2 + 1);
    expect((await listBaselines(cache.cacheRoot, { staleAfterMs: 0 })).debris.every((d) => d.stale)).toBe(
      true,
    );
    expect(await listBaselines(join(cache.cacheRoot, "missing"))).toEqual({
      slots: [],
      debris: [],
      totalBytes: 0,
      debrisBytes: 0,
    });
  });
});

describe("cleanBaselines", () => {
  it("removes only stale debris, says how much, and never touches a complete slot", async () => {
    const cache = await cacheWithDebris();
    const { paths } = cache;
    const dry = await cleanBaselines(cache.cacheRoot, { dryRun: true });
    expect(dry.removed.map((entry) => entry.path).sort()).toEqual(
      [paths.incomplete, paths.deleting, paths.legacyTrash, paths.legacyTemp, paths.staleTemp].sort(),
    );
    expect(dry).toMatchObject({ freedBytes: 64 + 32 + 8 + 4 + 1, repaired: [], dryRun: true });
    expect((await listBaselines(cache.cacheRoot)).debris).toHaveLength(8);

    const warnings: string[] = [];
    const report = await cleanBaselines(cache.cacheRoot, { onWarning: (message) => warnings.push(message) });
    expect(report.removed.map((entry) => entry.path).sort()).toEqual(
      dry.removed.map((entry) => entry.path).sort(),
    );
    expect(report).toMatchObject({ freedBytes: 109, repaired: [], dryRun: false });
    expect(warnings).toEqual(["removed an incomplete entry left by another writer"]);
    const listing = await listBaselines(cache.cacheRoot);
    expect(listing.slots.map((slot) => slot.commit)).toEqual([cache.second, cache.first]);
    expect(listing.debris.map((entry) => entry.path).sort()).toEqual(
      [cache.claimedSlot, paths.youngTrash, paths.youngTemp].sort(),
    );
  });

  it("with staleAfterMs 0 leaves zero debris: removes the rest and gives back an interrupted claim", async () => {
    const cache = await cacheWithDebris();
    const report = await cleanBaselines(cache.cacheRoot, { staleAfterMs: 0 });
    expect(report.repaired.map((entry) => entry.path)).toEqual([cache.claimedSlot]);
    expect(report.removed).toHaveLength(7);
    const listing = await listBaselines(cache.cacheRoot, { staleAfterMs: 0 });
    expect(listing.debris).toEqual([]);
    expect(listing.slots.map((slot) => slot.commit).sort()).toEqual(
      [cache.first, cache.second, cache.third].sort(),
    );
    expect(cacheNames(cache.cacheRoot)).toEqual([cache.first, cache.second, cache.third].sort());
    expect(readdirSync(stagingDir(cache.cacheRoot))).toEqual([]);
    // The given-back slot is whole and a hit again.
    const hit = await materializeBaseline({
      path: cache.repo.dir,
      base: cache.third,
      cacheRoot: cache.cacheRoot,
    });
    expect(hit.cache).toBe("hit");
    expect(readdirSync(hit.dir).sort()).toEqual([".git", "a.txt", "b.txt", "c.txt"]);
  });

  it("gives an empty report for a missing cache and refuses a negative age", async () => {
    const cacheRoot = makeTempDir("cache");
    expect(await cleanBaselines(join(cacheRoot, "missing"))).toEqual({
      removed: [],
      repaired: [],
      freedBytes: 0,
      dryRun: false,
    });
    await expect(cleanBaselines(cacheRoot, { staleAfterMs: -1 })).rejects.toBeInstanceOf(RangeError);
  });
});

describe("cleanBaselines, one guarantee at a time", () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  });
  const tree = (path: string, bytes: number, when?: Date) => {
    mkdirSync(path, { recursive: true });
    writeFileSync(join(path, "f"), "x".repeat(bytes));
    if (when) utimesSync(path, when, when);
    return path;
  };

  it("by default keeps debris younger than a day and removes debris older than a day", async () => {
    const { cacheRoot, first, paths } = await cacheWithDebris();
    const dayOld = tree(join(stagingDir(cacheRoot), `${first}.tmp.dddddd`), 1, ago(DAY + HOUR));
    const almostDayOld = tree(join(stagingDir(cacheRoot), `${first}.tmp.eeeeee`), 1, ago(DAY - HOUR));
    const report = await cleanBaselines(cacheRoot);
    const removed = report.removed.map((entry) => entry.path);
    expect(removed).toContain(dayOld);
    expect(removed).toContain(paths.staleTemp);
    expect(removed).not.toContain(almostDayOld);
    expect(removed).not.toContain(paths.youngTemp);
    expect(readdirSync(stagingDir(cacheRoot)).sort()).toEqual(
      [almostDayOld, paths.youngTemp].map((path) => path.slice(stagingDir(cacheRoot).length + 1)).sort(),
    );
  });

  it("refuses a negative staleAfterMs, naming it", async () => {
    await expect(cleanBaselines(makeTempDir("cache"), { staleAfterMs: -1 })).rejects.toThrow(
      new RangeError("staleAfterMs must be a number >= 0, got -1"),
    );
  });

  it("in a dry run lists an interrupted claim as a repair, not a removal, and leaves it claimed", async () => {
    const cache = await cacheWithDebris();
    const dry = await cleanBaselines(cache.cacheRoot, { staleAfterMs: 0, dryRun: true });
    expect(dry.repaired.map((entry) => entry.path)).toEqual([cache.claimedSlot]);
    expect(dry.removed.map((entry) => entry.path)).not.toContain(cache.claimedSlot);
    expect(readdirSync(join(cache.claimedSlot, ".git"))).toContain(CLAIM.slice(".git/".length));
  });

  it("gives back only claimed slots: trash holding a dead evictor's claim is removed, not given back", async () => {
    const cache = await cacheWithDebris();
    const trash = tree(
      join(trashDir(cache.cacheRoot), `${cache.first}.${(Date.now() - HOUR).toString(36)}.aaaabbbbcccc`),
      128,
    );
    mkdirSync(join(trash, ".git"));
    writeFileSync(join(trash, CLAIM), "");
    const warnings: [string, string][] = [];
    const report = await cleanBaselines(cache.cacheRoot, {
      staleAfterMs: 0,
      onWarning: (message, path) => warnings.push([message, path]),
    });
    expect(report.repaired.map((entry) => entry.path)).toEqual([cache.claimedSlot]);
    expect(report.removed.map((entry) => entry.path)).toContain(trash);
    expect(warnings.filter(([message]) => message.startsWith("gave back"))).toEqual([
      ["gave back an entry whose eviction was interrupted", cache.claimedSlot],
    ]);
    expect(existsSync(trash)).toBe(false);
  });

  it("keeps, and does not count, an incomplete slot that a build completed after the listing", async () => {
    const cache = await cacheWithDebris();
    const slot = cache.secondSlot;
    const aside = join(cache.cacheRoot, "sentinel-aside");
    renameSync(join(slot, SENTINEL), aside);
    const store = openStore(cache.cacheRoot);
    const scan = await scanCache(cache.cacheRoot, store, 0);
    expect(scan.debris).toContainEqual(expect.objectContaining({ kind: "incomplete", path: slot }));
    renameSync(aside, join(slot, SENTINEL));
    const report = await removeDebris(store, cache.cacheRoot, scan, { staleAfterMs: 0 });
    expect(report.removed.map((entry) => entry.path)).not.toContain(slot);
    expect(readdirSync(slot).sort()).toEqual([".git", "a.txt", "b.txt"]);
    expect(existsSync(join(slot, SENTINEL))).toBe(true);
  });

  it("reports debris that appeared between the listing and the sweep under its kind", async () => {
    const cache = await cacheWithDebris();
    const store = openStore(cache.cacheRoot);
    const scan = await scanCache(cache.cacheRoot, store, 0);
    const lateTemp = tree(join(stagingDir(cache.cacheRoot), `${cache.first}.tmp.ffffff`), 1, ago(2 * DAY));
    const lateTrash = tree(
      join(trashDir(cache.cacheRoot), `${cache.first}.${(Date.now() - HOUR).toString(36)}.ddddeeeeffff`),
      1,
    );
    const report = await removeDebris(store, cache.cacheRoot, scan, { staleAfterMs: 0 });
    expect(report.removed).toContainEqual({ kind: "temp", path: lateTemp, bytes: 0, ageMs: 0, stale: true });
    expect(report.removed).toContainEqual({
      kind: "trash",
      path: lateTrash,
      bytes: 0,
      ageMs: 0,
      stale: true,
    });
    expect(existsSync(lateTemp) || existsSync(lateTrash)).toBe(false);
  });

  it("warns and goes on when a directory of temp dirs cannot be listed", async () => {
    const cache = await cacheWithDebris();
    const store = openStore(cache.cacheRoot);
    const scan = await scanCache(cache.cacheRoot, store, DAY);
    const staging = stagingDir(cache.cacheRoot);
    rmSync(staging, { recursive: true });
    writeFileSync(staging, "not a directory");
    const warnings: [string, string][] = [];
    const report = await removeDebris(store, cache.cacheRoot, scan, {
      staleAfterMs: DAY,
      onWarning: (message, path) => warnings.push([message, path]),
    });
    expect(warnings).toContainEqual([
      expect.stringMatching(/^cannot remove stale temp dirs: .*ENOTDIR/),
      staging,
    ]);
    expect(report.removed.map((entry) => entry.path).sort()).toEqual(
      [cache.paths.legacyTemp, cache.paths.legacyTrash, cache.paths.incomplete, cache.paths.deleting].sort(),
    );
    expect(existsSync(cache.paths.legacyTemp)).toBe(false);
  });

  kernelTest("chattr", "warns and goes on when an incomplete slot cannot be moved aside", async () => {
    const cache = await cacheWithDebris();
    chattr("+i", cache.paths.incomplete);
    cleanups.push(() => chattr("-i", cache.paths.incomplete));
    const warnings: [string, string][] = [];
    const report = await cleanBaselines(cache.cacheRoot, {
      onWarning: (message, path) => warnings.push([message, path]),
    });
    expect(warnings).toContainEqual([
      expect.stringMatching(/^cannot remove an incomplete slot: .*EPERM/),
      cache.paths.incomplete,
    ]);
    expect(report.removed.map((entry) => entry.path)).not.toContain(cache.paths.incomplete);
    expect(report.removed.map((entry) => entry.path)).toContain(cache.paths.staleTemp);
    expect(existsSync(join(cache.paths.incomplete, "f"))).toBe(true);
  });

  kernelTest("chattr", "warns and keeps a 0.1.0 trash it cannot delete", async () => {
    const cache = await cacheWithDebris();
    const locked = tree(join(cache.paths.legacyTrash, "locked"), 1);
    chattr("+i", locked);
    cleanups.push(() => chattr("-i", locked));
    const warnings: [string, string][] = [];
    const report = await cleanBaselines(cache.cacheRoot, {
      onWarning: (message, path) => warnings.push([message, path]),
    });
    expect(warnings).toContainEqual([
      expect.stringMatching(/^cannot remove trash: /),
      cache.paths.legacyTrash,
    ]);
    expect(report.removed.map((entry) => entry.path)).not.toContain(cache.paths.legacyTrash);
    expect(existsSync(join(locked, "f"))).toBe(true);
  });
});
