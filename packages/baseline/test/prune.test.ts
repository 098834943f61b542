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
import { afterEach, describe, expect, it } from "vitest";
import { type BaselineResult, materializeBaseline, pruneBaselines, removeBaseline } from "../src/index.js";
import { CLAIM, SENTINEL, stagingDir, trashDir } from "../src/layout.js";
import { pruneWith } from "../src/prune.js";
import { openStore } from "../src/store.js";
import {
  cacheNames,
  gitRepo,
  listTree,
  makeTempDir,
  removeTempDirs,
  setLastUse,
  type TestRepo,
} from "./fixtures.js";

afterEach(removeTempDirs);

const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const ago = (ms: number) => new Date(Date.now() - ms);

/** A repository with one commit per entry of `sizes`, each holding one file of that many bytes. */
function commitsOfSizes(sizes: number[]): { repo: TestRepo; commits: string[] } {
  const repo = gitRepo();
  const commits = sizes.map((size, i) => {
    repo.write("data.bin", "x".repeat(size));
    return repo.commit(`commit ${i}`);
  });
  return { repo, commits };
}

async function cacheAll(repo: TestRepo, commits: string[], cacheRoot: string): Promise<BaselineResult[]> {
  const results: BaselineResult[] = [];
  for (const base of commits) results.push(await materializeBaseline({ path: repo.dir, base, cacheRoot }));
  return results;
}

/** Whether the slot is complete (its sentinel there) and holds its file whole. */
function isWhole(slot: string, size: number): boolean {
  return (
    existsSync(join(slot, SENTINEL)) && readFileSync(join(slot, "data.bin"), "utf8") === "x".repeat(size)
  );
}

describe("pruneBaselines with olderThanMs", () => {
  it("removes slots unused for olderThanMs and stale debris, keeps the rest, and reports every size", async () => {
    const { repo, commits } = commitsOfSizes([100, 200]);
    const [first, second] = commits as [string, string];
    const cacheRoot = makeTempDir("cache");
    const [old, fresh] = await cacheAll(repo, commits, cacheRoot);
    setLastUse(old?.dir as string, ago(30 * DAY));
    const baselines = join(cacheRoot, "baselines");
    const debris = (path: string, bytes: number, when?: Date) => {
      mkdirSync(path, { recursive: true });
      writeFileSync(join(path, "partial"), "p".repeat(bytes));
      if (when) utimesSync(path, when, when);
      return path;
    };
    const staleTemp = debris(join(stagingDir(cacheRoot), `${first}.tmp.abcDEF`), 10, ago(2 * DAY));
    const youngTemp = debris(join(stagingDir(cacheRoot), `${second}.tmp.ghiJKL`), 20);
    const legacyTemp = debris(join(baselines, `${first}.tmp.mnoPQR`), 30, ago(2 * DAY));
    const legacyTrash = debris(join(baselines, `${first}.trash.0123456789abcdef`), 40);
    const abandonedTrash = debris(
      join(trashDir(cacheRoot), `${first}.${(Date.now() - HOUR).toString(36)}.0123456789ab`),
      50,
    );
    debris(join(baselines, "not-a-slot"), 60, ago(30 * DAY));

    const report = await pruneBaselines(cacheRoot, { olderThanMs: 7 * DAY });
    expect(report.removed).toEqual([
      { commit: first, path: old?.dir, bytes: 100, files: 1, lastUsedMs: expect.any(Number) },
    ]);
    expect(report.debris.map((entry) => [entry.kind, entry.path, entry.bytes]).sort()).toEqual(
      [
        ["temp", staleTemp, 10],
        ["temp", legacyTemp, 30],
        ["trash", legacyTrash, 40],
        ["trash", abandonedTrash, 50],
      ].sort(),
    );
    expect(report).toMatchObject({ freedBytes: 100 + 10 + 30 + 40 + 50, remainingBytes: 200, dryRun: false });
    expect(cacheNames(cacheRoot)).toEqual([".staging", second, "not-a-slot"].sort());
    expect(readdirSync(stagingDir(cacheRoot))).toEqual([youngTemp.slice(stagingDir(cacheRoot).length + 1)]);
    expect(isWhole(fresh?.dir as string, 200)).toBe(true);
    // A pruned slot is simply built again.
    expect((await materializeBaseline({ path: repo.dir, base: first, cacheRoot })).cache).toBe("built");
  });

  it("keeps a slot a hit touched, gives an empty report for a missing cache, and refuses negative values", async () => {
    const { repo, commits } = commitsOfSizes([10]);
    const cacheRoot = makeTempDir("cache");
    const [built] = await cacheAll(repo, commits, cacheRoot);
    setLastUse(built?.dir as string, ago(30 * DAY));
    await materializeBaseline({ path: repo.dir, base: commits[0] as string, cacheRoot });
    expect((await pruneBaselines(cacheRoot, { olderThanMs: 7 * DAY })).removed).toEqual([]);
    expect(await pruneBaselines(join(cacheRoot, "missing"), { olderThanMs: 0 })).toEqual({
      removed: [],
      freedBytes: 0,
      remainingBytes: 0,
      debris: [],
      repaired: [],
      dryRun: false,
    });
    for (const options of [
      { olderThanMs: -1 },
      { maxBytes: -1 },
      { minAgeMs: -1 },
      { staleAfterMs: Number.NaN },
    ]) {
      await expect(pruneBaselines(cacheRoot, options)).rejects.toBeInstanceOf(RangeError);
    }
  });

  it("with olderThanMs 0 removes every slot, also one used just now (minAgeMs follows a shorter olderThanMs)", async () => {
    const { repo, commits } = commitsOfSizes([10, 20]);
    const cacheRoot = makeTempDir("cache");
    await cacheAll(repo, commits, cacheRoot);
    const report = await pruneBaselines(cacheRoot, { olderThanMs: 0 });
    expect(report.removed).toHaveLength(2);
    expect(cacheNames(cacheRoot)).toEqual([]);
  });
});

describe("pruneBaselines with maxBytes", () => {
  it("removes least recently used slots until the rest fit, never one used within minAgeMs", async () => {
    const { repo, commits } = commitsOfSizes([1000, 2000, 3000, 4000]);
    const cacheRoot = makeTempDir("cache");
    const slots = (await cacheAll(repo, commits, cacheRoot)).map((result) => result.dir);
    // Used: slot 1 longest ago, then 0, then 2; slot 3 a minute ago (within the default minimum age).
    setLastUse(slots[1] as string, ago(3 * HOUR));
    setLastUse(slots[0] as string, ago(2 * HOUR));
    setLastUse(slots[2] as string, ago(HOUR));
    setLastUse(slots[3] as string, ago(MINUTE));

    const dry = await pruneBaselines(cacheRoot, { maxBytes: 3500, dryRun: true });
    expect(dry.removed.map((slot) => slot.bytes)).toEqual([2000, 1000, 3000]);
    expect(dry).toMatchObject({ freedBytes: 6000, remainingBytes: 4000, dryRun: true });
    expect(slots.every((slot, i) => isWhole(slot, (i + 1) * 1000))).toBe(true);

    const report = await pruneBaselines(cacheRoot, { maxBytes: 3500 });
    expect(report.removed.map((slot) => slot.path)).toEqual([slots[1], slots[0], slots[2]]);
    // Over the cap still, but the last slot was used a minute ago.
    expect(report).toMatchObject({ freedBytes: 6000, remainingBytes: 4000 });
    expect(cacheNames(cacheRoot)).toEqual([commits[3]]);

    expect((await pruneBaselines(cacheRoot, { maxBytes: 1, minAgeMs: 0 })).removed).toHaveLength(1);
    expect(cacheNames(cacheRoot)).toEqual([]);
  });

  it("stops as soon as the rest fit", async () => {
    const { repo, commits } = commitsOfSizes([1000, 2000, 3000]);
    const cacheRoot = makeTempDir("cache");
    const slots = (await cacheAll(repo, commits, cacheRoot)).map((result) => result.dir);
    for (const [i, slot] of slots.entries()) setLastUse(slot, ago((3 - i) * HOUR));
    const report = await pruneBaselines(cacheRoot, { maxBytes: 5000 });
    expect(report.removed.map((slot) => slot.bytes)).toEqual([1000]);
    expect(report.remainingBytes).toBe(5000);
  });
});

describe("a prune racing a hit on the slot it removes", () => {
  it("keeps a slot that a hit touched between the listing and the claim (the give-back)", async () => {
    const { repo, commits } = commitsOfSizes([500]);
    const commit = commits[0] as string;
    const cacheRoot = makeTempDir("cache");
    const [built] = await cacheAll(repo, commits, cacheRoot);
    setLastUse(built?.dir as string, ago(DAY));
    let hit: BaselineResult | undefined;
    let leftItsPath = false;
    const store = openStore(cacheRoot, {
      hooks: {
        beforeClaim: async () => {
          hit = await materializeBaseline({ path: repo.dir, base: commit, cacheRoot });
        },
        afterTrash: () => {
          leftItsPath = true;
        },
      },
    });
    const report = await pruneWith(store, cacheRoot, { olderThanMs: HOUR });
    expect(hit?.cache).toBe("hit");
    expect(report.removed).toEqual([]);
    // The path the hit returned never left its place, not even for an instant.
    expect(leftItsPath).toBe(false);
    expect(isWhole(hit?.dir as string, 500)).toBe(true);
    expect(readdirSync(trashDir(cacheRoot))).toEqual([]);
  });

  it("puts back whole a slot whose hit landed after the move to the trash (the put-back)", async () => {
    const { repo, commits } = commitsOfSizes([500]);
    const cacheRoot = makeTempDir("cache");
    const [built] = await cacheAll(repo, commits, cacheRoot);
    const slot = built?.dir as string;
    setLastUse(slot, ago(DAY));
    const store = openStore(cacheRoot, {
      hooks: {
        // A hit that found the sentinel before the claim sets the times of the same file, now in the trash.
        afterTrash: (_slot, trash) => {
          expect(existsSync(slot)).toBe(false);
          utimesSync(join(trash, CLAIM), new Date(), new Date());
        },
      },
    });
    const report = await pruneWith(store, cacheRoot, { olderThanMs: HOUR });
    expect(report.removed).toEqual([]);
    expect(isWhole(slot, 500)).toBe(true);
    expect(listTree(slot)).toContain(SENTINEL);
    expect(readdirSync(trashDir(cacheRoot))).toEqual([]);
    expect((await materializeBaseline({ path: repo.dir, base: commits[0] as string, cacheRoot })).cache).toBe(
      "hit",
    );
  });

  it("a prune stalled after its move to the trash keeps its trash from another prune, and finishes its job", async () => {
    const { repo, commits } = commitsOfSizes([500]);
    const cacheRoot = makeTempDir("cache");
    const [built] = await cacheAll(repo, commits, cacheRoot);
    setLastUse(built?.dir as string, ago(DAY));
    let other: Awaited<ReturnType<typeof pruneBaselines>> | undefined;
    let trashSeen: string[] = [];
    const store = openStore(cacheRoot, {
      hooks: {
        afterTrash: async () => {
          other = await pruneBaselines(cacheRoot, { olderThanMs: 0 });
          trashSeen = readdirSync(trashDir(cacheRoot));
        },
      },
    });
    const report = await pruneWith(store, cacheRoot, { olderThanMs: HOUR });
    expect(other).toMatchObject({ removed: [], debris: [] });
    expect(trashSeen).toHaveLength(1);
    expect(report.removed.map((slot) => slot.commit)).toEqual(commits);
    expect(readdirSync(trashDir(cacheRoot))).toEqual([]);
  });
});

describe("removeBaseline", () => {
  it("removes a slot by full commit or unique prefix through the eviction path, and reports it", async () => {
    const { repo, commits } = commitsOfSizes([10, 20]);
    const cacheRoot = makeTempDir("cache");
    const slots = (await cacheAll(repo, commits, cacheRoot)).map((result) => result.dir);
    for (const slot of slots) setLastUse(slot, ago(HOUR));
    const [first, second] = commits as [string, string];
    expect(await removeBaseline(cacheRoot, first)).toMatchObject({
      commit: first,
      path: slots[0],
      bytes: 10,
      files: 1,
    });
    expect(await removeBaseline(cacheRoot, second.slice(0, 7).toUpperCase())).toMatchObject({
      commit: second,
    });
    expect(cacheNames(cacheRoot)).toEqual([]);
    expect(readdirSync(trashDir(cacheRoot))).toEqual([]);
  });

  it("refuses a slot used within minAgeMs unless forced, and names what is wrong with a bad commit", async () => {
    const { repo, commits } = commitsOfSizes([10, 20]);
    const cacheRoot = makeTempDir("cache");
    const [first, second] = commits as [string, string];
    const slots = (await cacheAll(repo, commits, cacheRoot)).map((result) => result.dir);
    await expect(removeBaseline(cacheRoot, first)).rejects.toMatchObject({ code: "EBUSY", path: slots[0] });
    expect(isWhole(slots[0] as string, 10)).toBe(true);
    await expect(removeBaseline(cacheRoot, first, { minAgeMs: 0 })).resolves.toMatchObject({ commit: first });
    await expect(removeBaseline(cacheRoot, second, { force: true })).resolves.toMatchObject({
      commit: second,
    });
    await expect(removeBaseline(cacheRoot, second)).rejects.toMatchObject({ code: "ENOENT" });
    await expect(removeBaseline(cacheRoot, "xyz")).rejects.toMatchObject({ code: "EINVAL" });

    // A directory without a sentinel in a slot's place is debris: removed too, whatever its age.
    const incomplete = join(cacheRoot, "baselines", "e".repeat(40));
    mkdirSync(join(incomplete, "d"), { recursive: true });
    writeFileSync(join(incomplete, "d", "f"), "12345");
    await expect(removeBaseline(cacheRoot, "e".repeat(40))).resolves.toMatchObject({
      path: incomplete,
      bytes: 5,
    });
    expect(existsSync(incomplete)).toBe(false);

    // A slot an evictor holds is on its way out.
    const held = (await materializeBaseline({ path: repo.dir, base: first, cacheRoot })).dir;
    renameSync(join(held, SENTINEL), join(held, CLAIM));
    await expect(removeBaseline(cacheRoot, first, { force: true })).rejects.toMatchObject({
      code: "ENOENT",
      message: expect.stringContaining("being removed by another process"),
    });

    // Two names sharing a prefix (directories in a slot's place are enough for the lookup).
    for (const name of ["abcd".padEnd(40, "0"), "abcd".padEnd(40, "1")])
      mkdirSync(join(cacheRoot, "baselines", name));
    await expect(removeBaseline(cacheRoot, "abcd")).rejects.toMatchObject({ code: "EAMBIGUOUS" });
  });
});
