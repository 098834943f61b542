// The store-management calls behind the CLI's ls, rm and clean: list(), remove() and clean().
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TEST_HOOKS, type TestHooks } from "../src/cache.js";
import { type Debris, STAGE_COMPLETE_SENTINEL, StageCache, type StageCacheOptions } from "../src/index.js";
import { sampleTree, tempDir, writeTree } from "./fixtures.js";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const CLAIM = ".cas-stage-evicting";

function setMtime(path: string, ms: number): void {
  utimesSync(path, new Date(ms), new Date(ms));
}

/** A trash name as cas makes it: `<slot name>.<ms since epoch, base 36>.<12 hex>`. */
function trashName(slotName: string, createdAt: number): string {
  return `${slotName}.${createdAt.toString(36)}.0123456789ab`;
}

/**
 * A root with two complete entries and one of each kind of debris, stale and live (staleAfterMs: 1 hour),
 * each holding a known number of bytes.
 */
async function rootWithDebris() {
  const root = join(tempDir("root"), "cache");
  const maker = await StageCache.open({ root });
  const recent = await maker.stage(writeTree(tempDir("src"), { f: "12345" }), "recent");
  const older = await maker.stage(writeTree(tempDir("src"), { f: "1234567890" }), "older");
  const claimed = await maker.stage(writeTree(tempDir("src"), { f: "123" }), "claimed");
  await maker.close();
  const now = Date.now();
  setMtime(join(older, STAGE_COMPLETE_SENTINEL), now - 2 * HOUR_MS);
  renameSync(join(claimed, STAGE_COMPLETE_SENTINEL), join(claimed, CLAIM));
  const make = (rel: string, bytes: number, mtimeMs?: number) => {
    const dir = writeTree(join(root, rel), { data: Buffer.alloc(bytes) });
    if (mtimeMs !== undefined) {
      setMtime(join(dir, "data"), mtimeMs);
      setMtime(dir, mtimeMs);
    }
    return dir;
  };
  const debris = {
    staleTemp: make(".staging/stale.tmp.AbC123", 100, now - 2 * HOUR_MS),
    liveTemp: make(".staging/live.tmp.AbC123", 200),
    staleScratch: make(".scratch/s-AbC123", 300, now - 2 * HOUR_MS),
    liveScratch: make(".scratch/s-XyZ789", 400),
    staleTrash: make(`.trash/${trashName("gone", now - 2 * 60_000)}`, 500),
    liveTrash: make(`.trash/${trashName("going", now)}`, 600),
    deletingTrash: make(`.trash/${trashName("gone2", now)}.deleting`, 700),
    foreignTrash: make(".trash/not-ours", 800),
    staleIncomplete: make("in/incomplete-old", 900, now - 2 * HOUR_MS),
    liveIncomplete: make("in/incomplete-new", 1000),
    // Old at the top, but a file deep inside is being written now.
    busyIncomplete: make("in/incomplete-busy", 1100, now - 2 * HOUR_MS),
  };
  writeTree(debris.busyIncomplete, { "deep/new": "x" });
  setMtime(debris.busyIncomplete, now - 2 * HOUR_MS);
  setMtime(join(debris.busyIncomplete, "deep"), now - 2 * HOUR_MS);
  return { root, recent, older, claimed, debris };
}

function openStore(root: string, options: StageCacheOptions = {}, hooks: TestHooks = {}) {
  return StageCache.open({
    root,
    staleAfterMs: HOUR_MS,
    cleanOnOpen: false,
    ...options,
    [TEST_HOOKS]: { claimGraceMs: HOUR_MS, ...hooks },
  } as StageCacheOptions);
}

const byPath = (a: Pick<Debris, "path">, b: Pick<Debris, "path">) => (a.path < b.path ? -1 : 1);

describe("list()", () => {
  it("lists complete entries, most recently used first, and every kind of debris with its size", async () => {
    const { root, recent, older, claimed, debris } = await rootWithDebris();
    const cache = await openStore(root);
    const { entries, debris: found } = await cache.list();
    expect(entries).toEqual([
      { fingerprint: "recent", path: recent, bytes: 5, lastUsedMs: expect.any(Number) },
      { fingerprint: "older", path: older, bytes: 10, lastUsedMs: expect.any(Number) },
    ]);
    expect((entries[0] as { lastUsedMs: number }).lastUsedMs).toBeGreaterThan(
      (entries[1] as { lastUsedMs: number }).lastUsedMs,
    );
    expect(found.sort(byPath)).toEqual(
      [
        { kind: "temp", path: debris.staleTemp, bytes: 100, stale: true },
        { kind: "temp", path: debris.liveTemp, bytes: 200, stale: false },
        { kind: "scratch", path: debris.staleScratch, bytes: 300, stale: true },
        { kind: "scratch", path: debris.liveScratch, bytes: 400, stale: false },
        { kind: "trash", path: debris.staleTrash, bytes: 500, stale: true },
        { kind: "trash", path: debris.liveTrash, bytes: 600, stale: false },
        { kind: "trash", path: debris.deletingTrash, bytes: 700, stale: true },
        { kind: "trash", path: debris.foreignTrash, bytes: 800, stale: true },
        { kind: "incomplete", path: debris.staleIncomplete, bytes: 900, stale: true },
        { kind: "incomplete", path: debris.liveIncomplete, bytes: 1000, stale: false },
        { kind: "incomplete", path: debris.busyIncomplete, bytes: 1101, stale: false },
        // Bytes of its files and its claim (the renamed sentinel).
        { kind: "claimed", path: claimed, bytes: expect.any(Number), stale: false },
      ].sort(byPath),
    );
    await cache.close();
  });
});

describe("clean()", () => {
  it("in a dry run, reports the stale debris and its bytes, and removes nothing", async () => {
    const { root, debris } = await rootWithDebris();
    const cache = await openStore(root);
    const dry = await cache.clean({ dryRun: true });
    expect(dry.removed.map((item) => item.path).sort()).toEqual(
      [
        debris.staleTemp,
        debris.staleScratch,
        debris.staleTrash,
        debris.deletingTrash,
        debris.foreignTrash,
        debris.staleIncomplete,
      ].sort(),
    );
    expect(dry.freedBytes).toBe(100 + 300 + 500 + 700 + 800 + 900);
    expect(dry.repaired).toEqual([]);
    for (const path of Object.values(debris)) expect(existsSync(path)).toBe(true);
    await cache.close();
  });

  it("removes exactly what its dry run reported, and never a complete entry", async () => {
    const { root, recent, older, claimed, debris } = await rootWithDebris();
    const warnings: string[] = [];
    const cache = await openStore(root, { onWarning: (m) => warnings.push(m) });
    const dry = await cache.clean({ dryRun: true });
    const done = await cache.clean();
    expect(done.removed.sort(byPath)).toEqual(dry.removed.sort(byPath));
    expect(done.freedBytes).toBe(dry.freedBytes);
    for (const item of dry.removed) expect(existsSync(item.path), item.path).toBe(false);
    for (const path of [
      debris.liveTemp,
      debris.liveScratch,
      debris.liveTrash,
      debris.liveIncomplete,
      debris.busyIncomplete,
    ]) {
      expect(existsSync(path), path).toBe(true);
    }
    for (const entry of [recent, older]) expect(existsSync(join(entry, STAGE_COMPLETE_SENTINEL))).toBe(true);
    expect(existsSync(join(claimed, CLAIM))).toBe(true);
    expect(warnings).toEqual(["removed an incomplete entry left by another writer"]);
    expect((await cache.clean({ dryRun: true })).removed).toEqual([]);
    await cache.close();
  });

  it("gives back an entry whose eviction was interrupted, once its claim is past the grace period", async () => {
    const { root, claimed } = await rootWithDebris();
    const cache = await openStore(root, {}, { claimGraceMs: 0 });
    const dry = await cache.clean({ dryRun: true });
    expect(dry.repaired).toEqual([
      { kind: "claimed", path: claimed, bytes: expect.any(Number), stale: true },
    ]);
    expect(existsSync(join(claimed, CLAIM))).toBe(true);
    expect((await cache.clean()).repaired.map((item) => item.path)).toEqual([claimed]);
    expect(readFileSync(join(claimed, "f"), "utf8")).toBe("123");
    expect((await cache.list()).entries.map((entry) => entry.fingerprint)).toContain("claimed");
    await cache.close();
  });

  it("runs as part of open() unless cleanOnOpen is false", async () => {
    const { root, debris } = await rootWithDebris();
    const untouched = await openStore(root);
    await untouched.close();
    expect(existsSync(debris.staleTemp)).toBe(true);
    const cleaning = await openStore(root, { cleanOnOpen: true });
    await cleaning.close();
    expect(existsSync(debris.staleTemp)).toBe(false);
    expect(existsSync(debris.staleIncomplete)).toBe(false);
    expect(existsSync(debris.liveTemp)).toBe(true);
  });

  it("in open(), looks at every slot of a large root at most once per interval; clean() always does", async () => {
    const root = join(tempDir("root"), "cache");
    const maker = await StageCache.open({ root });
    const source = writeTree(tempDir("src"), { f: "x" });
    // One slot more than open() looks at on every call.
    for (let i = 0; i <= 64; i++) await maker.stage(source, `entry-${i}`);
    await maker.close();
    const claimed = join(root, "en", "entry-0");
    const fabricate = () => {
      renameSync(join(claimed, STAGE_COMPLETE_SENTINEL), join(claimed, CLAIM));
      const incomplete = writeTree(join(root, "in", "incomplete"), { data: "x" });
      setMtime(join(incomplete, "data"), Date.now() - 2 * HOUR_MS);
      setMtime(incomplete, Date.now() - 2 * HOUR_MS);
      return incomplete;
    };
    const open = () => openStore(root, { cleanOnOpen: true }, { claimGraceMs: 0 });
    await (await open()).close();
    const incomplete = fabricate();

    const skipping = await open();
    expect(existsSync(join(claimed, CLAIM))).toBe(true);
    expect(existsSync(incomplete)).toBe(true);
    const { removed, repaired } = await skipping.clean();
    await skipping.close();
    expect(removed.map((item) => item.path)).toEqual([incomplete]);
    expect(repaired.map((item) => item.path)).toEqual([claimed]);

    fabricate();
    // Ten minutes later (as the stamp says), open() looks at every slot again.
    const stamp = join(root, ".slots-scanned");
    const { slots } = JSON.parse(readFileSync(stamp, "utf8"));
    expect(slots).toBeGreaterThan(64);
    writeFileSync(stamp, JSON.stringify({ scannedAt: Date.now() - 10 * 60_000, slots }));
    await (await open()).close();
    expect(existsSync(join(claimed, STAGE_COMPLETE_SENTINEL))).toBe(true);
    expect(existsSync(incomplete)).toBe(false);

    // So does a stamp from the future (a clock set back since).
    fabricate();
    writeFileSync(stamp, JSON.stringify({ scannedAt: Date.now() + HOUR_MS, slots }));
    await (await open()).close();
    expect(existsSync(join(claimed, STAGE_COMPLETE_SENTINEL))).toBe(true);
    expect(existsSync(incomplete)).toBe(false);
  });
});

describe("remove()", () => {
  async function twoEntries() {
    const root = join(tempDir("root"), "cache");
    const maker = await StageCache.open({ root });
    const fresh = await maker.stage(sampleTree(tempDir("src")), "fresh");
    const stale = await maker.stage(writeTree(tempDir("src"), { f: "1234" }), "stale");
    await maker.close();
    setMtime(join(stale, STAGE_COMPLETE_SENTINEL), Date.now() - DAY_MS);
    return { root, fresh, stale };
  }

  it("removes an entry not used within minAgeMs, in one move, with its emptied fan-out directory", async () => {
    const { root, stale } = await twoEntries();
    const cache = await StageCache.open({ root, minAgeMs: HOUR_MS });
    expect(await cache.remove("stale")).toEqual({
      fingerprint: "stale",
      path: stale,
      removed: true,
      bytes: 4,
      lastUsedMs: expect.any(Number),
    });
    expect(existsSync(join(root, "st"))).toBe(false);
    expect(readdirSync(join(root, ".trash"))).toEqual([]);
    await cache.close();
  });

  it("keeps an entry used within minAgeMs unless forced", async () => {
    const { root, fresh } = await twoEntries();
    const cache = await StageCache.open({ root, minAgeMs: HOUR_MS });
    expect(await cache.remove("fresh")).toMatchObject({
      removed: false,
      reason: "recently-used",
      path: fresh,
    });
    expect(existsSync(join(fresh, STAGE_COMPLETE_SENTINEL))).toBe(true);
    expect(await cache.remove("fresh", { force: true })).toMatchObject({ removed: true, path: fresh });
    expect(existsSync(fresh)).toBe(false);
    await cache.close();
  });

  it("keeps an entry a hit uses while it is being removed", async () => {
    const { root, stale } = await twoEntries();
    const sentinel = join(stale, STAGE_COMPLETE_SENTINEL);
    const hit = () => utimesSync(sentinel, new Date(), new Date());
    const cache = await openStore(root, { minAgeMs: HOUR_MS }, { beforeClaim: hit });
    expect(await cache.remove("stale")).toMatchObject({ removed: false, reason: "in-use", path: stale });
    expect(readFileSync(join(stale, "f"), "utf8")).toBe("1234");
    await cache.close();
  });

  it("says when there is no complete entry to remove, and leaves debris to clean()", async () => {
    const root = join(tempDir("root"), "cache");
    const cache = await StageCache.open({ root });
    mkdirSync(join(root, "in", "incomplete"), { recursive: true });
    writeFileSync(join(root, "in", "incomplete", "f"), "x");
    for (const fingerprint of ["absent", "incomplete"]) {
      expect(await cache.remove(fingerprint, { force: true })).toMatchObject({
        removed: false,
        reason: "not-found",
        bytes: 0,
      });
    }
    expect(existsSync(join(root, "in", "incomplete", "f"))).toBe(true);
    await expect(cache.remove("../x")).rejects.toThrow(TypeError);
    await cache.close();
  });
});
