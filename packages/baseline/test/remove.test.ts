// removeBaseline's lookup, its errors and its races, and pruneBaselines' options and faults: each test
// pins a behaviour a mutation of prune.ts would change (see MUTATION.md).
import { existsSync, mkdirSync, renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chattr, kernelTest } from "@cas-stage/test-support/kernel";
import { afterEach, describe, expect, it } from "vitest";
import {
  BaselineError,
  cleanBaselines,
  materializeBaseline,
  pruneBaselines,
  removeBaseline,
} from "../src/index.js";
import { baselinesDir, CLAIM, SENTINEL, slotPath } from "../src/layout.js";
import { pruneWith, removeWith } from "../src/prune.js";
import { openStore } from "../src/store.js";
import { cacheNames, gitRepo, makeTempDir, removeTempDirs, setLastUse, type TestRepo } from "./fixtures.js";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  removeTempDirs();
});

const HOUR = 60 * 60 * 1000;
const ago = (ms: number) => new Date(Date.now() - ms);

/** A cache holding the slot of one commit, last used an hour ago. */
async function cachedSlot(): Promise<{ repo: TestRepo; commit: string; cacheRoot: string; slot: string }> {
  const repo = gitRepo();
  repo.write("data.txt", "twelve bytes");
  const commit = repo.commit("one");
  const cacheRoot = makeTempDir("cache");
  const slot = (await materializeBaseline({ path: repo.dir, base: commit, cacheRoot })).dir;
  setLastUse(slot, ago(HOUR));
  return { repo, commit, cacheRoot, slot };
}

function isWhole(slot: string): boolean {
  return existsSync(join(slot, SENTINEL)) && existsSync(join(slot, "data.txt"));
}

/** A 4-digit prefix no slot of `commit` starts with. */
const otherPrefix = (commit: string) => (commit.startsWith("f") ? "0000" : "ffff");

/** A store of `cacheRoot` whose evictions let a hit of `commit` (through the public API) land just before the claim. */
function storeWithHitBeforeClaim(repo: string, commit: string, cacheRoot: string) {
  return openStore(cacheRoot, {
    hooks: {
      beforeClaim: async () => {
        expect((await materializeBaseline({ path: repo, base: commit, cacheRoot })).cache).toBe("hit");
      },
    },
  });
}

describe("removeBaseline finds the slot a commit names", () => {
  it("by a unique prefix, not counting debris whose name starts with it", async () => {
    const { commit, cacheRoot, slot } = await cachedSlot();
    mkdirSync(join(baselinesDir(cacheRoot), `${commit}.trash.0011223344556677`));
    mkdirSync(join(baselinesDir(cacheRoot), `${commit}.tmp.abcdef`));
    await expect(removeBaseline(cacheRoot, commit.slice(0, 6))).resolves.toMatchObject({
      commit,
      path: slot,
    });
    expect(existsSync(slot)).toBe(false);
  });

  it("refuses what is not a commit id before looking, saying what to pass", async () => {
    const { cacheRoot, slot } = await cachedSlot();
    for (const bad of ["xyz", "abc", "zzzzabcd", "abcdzzzz", "a".repeat(65), ""]) {
      const error = await removeBaseline(cacheRoot, bad).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(BaselineError);
      expect(error).toMatchObject({
        code: "EINVAL",
        message: `"${bad}" is not a commit id; pass a full SHA or at least 4 hex digits`,
      });
    }
    expect(isWhole(slot)).toBe(true);
  });

  it("says a full SHA that is not cached is not cached, naming the slot's path", async () => {
    const { commit, cacheRoot } = await cachedSlot();
    const missing = otherPrefix(commit).padEnd(40, "0");
    await expect(removeBaseline(cacheRoot, missing)).rejects.toMatchObject({
      code: "ENOENT",
      message: `no baseline of ${missing} is cached in ${cacheRoot}`,
      path: slotPath(cacheRoot, missing),
    });
  });

  it("says a prefix naming no slot names none, also in a cache that does not exist yet", async () => {
    const { commit, cacheRoot } = await cachedSlot();
    const prefix = otherPrefix(commit);
    for (const root of [cacheRoot, join(cacheRoot, "missing")]) {
      await expect(removeBaseline(root, prefix)).rejects.toMatchObject({
        code: "ENOENT",
        message: `no baseline of a commit starting with ${prefix} is cached in ${root}`,
        path: baselinesDir(root),
      });
    }
  });

  it("reports a baselines directory it cannot list with the filesystem's code", async () => {
    const cacheRoot = makeTempDir("cache");
    writeFileSync(baselinesDir(cacheRoot), "not a directory");
    await expect(removeBaseline(cacheRoot, "abcd")).rejects.toMatchObject({
      code: "ENOTDIR",
      message: expect.stringContaining(`cannot use the baseline cache in ${cacheRoot}`),
    });
  });

  it("lists at most three of the slots an ambiguous prefix names, and asks for more digits", async () => {
    const cacheRoot = makeTempDir("cache");
    const names = ["0", "1", "2", "3"].map((digit) => "abcd".padEnd(40, digit));
    for (const name of names) mkdirSync(join(baselinesDir(cacheRoot), name), { recursive: true });
    const some = "abcd[0-3]{36}";
    await expect(removeBaseline(cacheRoot, "ABCD")).rejects.toMatchObject({
      code: "EAMBIGUOUS",
      message: expect.stringMatching(
        new RegExp(`^abcd names 4 cached baselines \\(${some}, ${some}, ${some}, …\\); pass more digits$`),
      ),
      path: baselinesDir(cacheRoot),
    });
    rmSync(join(baselinesDir(cacheRoot), names[3] as string), { recursive: true });
    await expect(removeBaseline(cacheRoot, "abcd")).rejects.toMatchObject({
      code: "EAMBIGUOUS",
      message: expect.stringMatching(
        new RegExp(`^abcd names 3 cached baselines \\(${some}, ${some}, ${some}\\); pass more digits$`),
      ),
    });
  });
});

describe("removeBaseline and the minimum age", () => {
  it("says when a busy slot was used and what the minimum age is, and keeps it", async () => {
    const { commit, cacheRoot, slot } = await cachedSlot();
    await expect(removeBaseline(cacheRoot, commit, { minAgeMs: 2 * HOUR })).rejects.toMatchObject({
      code: "EBUSY",
      path: slot,
      message: expect.stringMatching(
        new RegExp(
          `^the baseline ${commit} was used 360\\d s ago, within the minimum age of 7200 s, and a run may be reading it; pass force to remove it anyway$`,
        ),
      ),
    });
    expect(isWhole(slot)).toBe(true);
  });

  it("refuses a negative minAgeMs, naming the option", async () => {
    const { commit, cacheRoot } = await cachedSlot();
    await expect(removeBaseline(cacheRoot, commit, { minAgeMs: -1 })).rejects.toThrow(
      new RangeError("removeBaseline: minAgeMs must be a number >= 0, got -1"),
    );
  });
});

describe("removeBaseline racing other processes and writers", () => {
  it("removes a directory without a sentinel in the slot's place, and says so through onWarning", async () => {
    const { cacheRoot } = await cachedSlot();
    const incomplete = slotPath(cacheRoot, "e".repeat(40));
    mkdirSync(incomplete, { recursive: true });
    writeFileSync(join(incomplete, "partial"), "12345");
    const warnings: [string, string][] = [];
    await expect(
      removeBaseline(cacheRoot, "eeee", { onWarning: (message, path) => warnings.push([message, path]) }),
    ).resolves.toMatchObject({ path: incomplete, bytes: 5, files: 1 });
    expect(warnings).toEqual([["removed an incomplete entry left by another writer", incomplete]]);
    expect(existsSync(incomplete)).toBe(false);
  });

  it("without force keeps a slot a hit used while it was being claimed, as EBUSY", async () => {
    const { repo, commit, cacheRoot, slot } = await cachedSlot();
    const store = storeWithHitBeforeClaim(repo.dir, commit, cacheRoot);
    await expect(removeWith(store, cacheRoot, commit, { minAgeMs: 0 })).rejects.toMatchObject({
      code: "EBUSY",
      path: slot,
    });
    expect(isWhole(slot)).toBe(true);
  });

  it("with force removes a slot even if a hit used it while it was being claimed", async () => {
    const { repo, commit, cacheRoot, slot } = await cachedSlot();
    const store = storeWithHitBeforeClaim(repo.dir, commit, cacheRoot);
    await expect(removeWith(store, cacheRoot, commit, { force: true })).resolves.toMatchObject({
      commit,
      path: slot,
    });
    expect(existsSync(slot)).toBe(false);
  });

  it("with force says ENOENT when another process removed the slot first", async () => {
    const { commit, cacheRoot, slot } = await cachedSlot();
    const store = openStore(cacheRoot, {
      hooks: {
        beforeClaim: async () => {
          await removeBaseline(cacheRoot, commit, { force: true });
        },
      },
    });
    await expect(removeWith(store, cacheRoot, commit, { force: true })).rejects.toMatchObject({
      code: "ENOENT",
      message: `the baseline ${commit} was removed by another process`,
      path: slot,
    });
    expect(cacheNames(cacheRoot)).toEqual([]);
  });
});

describe("pruneBaselines options and faults", () => {
  it("names the option a negative value was given for", async () => {
    const cacheRoot = makeTempDir("cache");
    for (const name of ["olderThanMs", "maxBytes", "minAgeMs", "staleAfterMs"]) {
      await expect(pruneBaselines(cacheRoot, { [name]: -1 })).rejects.toThrow(
        new RangeError(`pruneBaselines: ${name} must be a number >= 0, got -1`),
      );
    }
    await expect(pruneWith(openStore(cacheRoot), cacheRoot, { staleAfterMs: -1 })).rejects.toThrow(
      new RangeError("pruneBaselines: staleAfterMs must be a number >= 0, got -1"),
    );
  });

  it("with staleAfterMs 0 gives back a claim younger than the claim grace, and says so through onWarning", async () => {
    const { cacheRoot, slot } = await cachedSlot();
    renameSync(join(slot, SENTINEL), join(slot, CLAIM));
    utimesSync(join(slot, CLAIM), new Date(), new Date());
    const warnings: string[] = [];
    const report = await pruneBaselines(cacheRoot, {
      staleAfterMs: 0,
      onWarning: (message) => warnings.push(message),
    });
    expect(report.repaired.map((entry) => entry.path)).toEqual([slot]);
    expect(warnings).toEqual(["gave back an entry whose eviction was interrupted"]);
    expect(isWhole(slot)).toBe(true);
  });

  kernelTest(
    "chattr",
    "reports a slot it cannot move to the trash with the filesystem's code, and leaves the slot whole",
    async () => {
      const { cacheRoot, slot } = await cachedSlot();
      chattr("+i", baselinesDir(cacheRoot));
      cleanups.push(() => chattr("-i", baselinesDir(cacheRoot)));
      const error = await pruneBaselines(cacheRoot, { olderThanMs: 0 }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(BaselineError);
      expect(error).toMatchObject({
        code: "EPERM",
        path: slot,
        message: expect.stringContaining(`cannot move ${slot} to the trash`),
      });
      expect(isWhole(slot)).toBe(true);
    },
  );
});

describe("a cache without a trash directory (written by 0.1.0, or its trash removed by hand)", () => {
  it("removeBaseline makes the trash and removes a complete slot", async () => {
    const { commit, cacheRoot, slot } = await cachedSlot();
    rmSync(join(baselinesDir(cacheRoot), ".trash"), { recursive: true, force: true });
    await expect(removeBaseline(cacheRoot, commit)).resolves.toMatchObject({ commit, path: slot });
    expect(existsSync(slot)).toBe(false);
  });

  it("removeBaseline and cleanBaselines remove an incomplete slot", async () => {
    type Remove = (cacheRoot: string, commit: string, onWarning: (message: string) => void) => unknown;
    const removers: Remove[] = [
      (cacheRoot, commit, onWarning) => removeBaseline(cacheRoot, commit, { onWarning }),
      (cacheRoot, _commit, onWarning) => cleanBaselines(cacheRoot, { staleAfterMs: 0, onWarning }),
    ];
    for (const remove of removers) {
      const { commit, cacheRoot, slot } = await cachedSlot();
      rmSync(join(slot, SENTINEL));
      rmSync(join(baselinesDir(cacheRoot), ".trash"), { recursive: true, force: true });
      const warnings: string[] = [];
      await remove(cacheRoot, commit, (message) => warnings.push(message));
      expect(existsSync(slot)).toBe(false);
      expect(warnings).toEqual(["removed an incomplete entry left by another writer"]);
    }
  });
});
