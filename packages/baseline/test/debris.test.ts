import { mkdirSync, readdirSync, renameSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { cleanBaselines, listBaselines, materializeBaseline } from "../src/index.js";
import { CLAIM, SENTINEL, stagingDir, trashDir } from "../src/layout.js";
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
