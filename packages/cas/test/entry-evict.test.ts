// EntryStore.evict, step by step (see its doc comment: 1 re-stat, 2 claim, 3 claim check, 4 move to the
// trash, 5 late check, 6 delete), with each race window held open through the store's test hooks, on real
// files. Windows between two syscalls that no hook reaches are in entry-windows.test.ts (strace).
import { mkdir, open, rename, rm, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { chattr, kernelTest, mountTmpfs, unmount } from "@cas-stage/test-support/kernel";
import { afterEach, describe, expect, it } from "vitest";
import { CasError, type EntryStoreHooks } from "../src/index.js";
import {
  CLAIM,
  gate,
  LONG_AGO,
  lastUsed,
  makeCache,
  markers,
  namesIn,
  publishEntry,
  SENTINEL,
  setLastUsed,
  type TestCache,
  treeProblem,
} from "./entries.js";

const undo: Array<() => void> = [];
afterEach(() => {
  for (const step of undo.splice(0).reverse()) step();
});

/**
 * A cache holding entry "abc", last used LONG_AGO as an eviction pass listed it, and an evictor: a second
 * store on the same root (another process, in effect) with `hooks`.
 */
async function cacheWithOldEntry(hooks: EntryStoreHooks = {}) {
  const cache = await makeCache();
  await publishEntry(cache, "abc");
  const slot = cache.slot("abc");
  const listed = await setLastUsed(slot, LONG_AGO);
  const evictor = await makeCache({ root: cache.root, hooks });
  return { cache, slot, listed, evictor: evictor.store, evictorWarnings: evictor.warnings };
}

async function expectCompleteAndWhole(cache: TestCache, slot: string): Promise<void> {
  expect(await markers(slot)).toEqual([SENTINEL]);
  expect(await treeProblem(slot, "abc")).toBe("whole");
  expect((await cache.store.inspect(slot)).state).toBe("complete");
  expect(await namesIn(cache.store.trashDir)).toEqual([]);
}

async function expectGone(cache: TestCache, slot: string): Promise<void> {
  expect((await cache.store.inspect(slot)).state).toBe("absent");
  expect(await namesIn(cache.store.trashDir)).toEqual([]);
}

describe("EntryStore.evict removes an unused entry", () => {
  it("removes the whole slot through the trash, leaving no claim, no trash, no temp and no warning", async () => {
    const { cache, slot, listed, evictor, evictorWarnings } = await cacheWithOldEntry();
    expect(await evictor.evict(slot, listed)).toBe(true);
    await expectGone(cache, slot);
    expect(await namesIn(cache.store.stagingDir)).toEqual([]);
    expect(evictorWarnings).toEqual([]);
  });

  it("never deletes under the slot's own name: claimed whole in place, then whole in the trash, then gone", async () => {
    const seen: string[] = [];
    const { cache, slot, listed, evictor } = await cacheWithOldEntry({
      beforeClaim: async (s) => {
        seen.push(`beforeClaim: ${await markers(s)}, ${await treeProblem(s, "abc")}`);
      },
      beforeTrash: async (s) => {
        seen.push(`beforeTrash: ${await markers(s)}, ${await treeProblem(s, "abc")}`);
      },
      afterTrash: async (s, trash) => {
        const left = (await cache.store.inspect(s)).state;
        seen.push(
          `afterTrash: slot ${left}, trash ${await markers(trash)}, ${await treeProblem(trash, "abc")}`,
        );
      },
    });
    expect(await evictor.evict(slot, listed)).toBe(true);
    expect(seen).toEqual([
      `beforeClaim: ${SENTINEL}, whole`,
      `beforeTrash: ${CLAIM}, whole`,
      `afterTrash: slot absent, trash ${CLAIM}, whole`,
    ]);
    await expectGone(cache, slot);
  });

  it("names the trash after the slot, inside the store's trash directory", async () => {
    let trashPath = "";
    const { slot, listed, evictor } = await cacheWithOldEntry({
      afterTrash: (_s, trash) => {
        trashPath = trash;
      },
    });
    expect(await evictor.evict(slot, listed)).toBe(true);
    expect(trashPath.startsWith(join(evictor.trashDir, "abc."))).toBe(true);
  });
});

describe("EntryStore.evict step 1: the re-stat", () => {
  it("keeps an entry whose sentinel changed since it was listed (a hit touched it), without claiming it", async () => {
    const claims = gate();
    const { cache, slot, evictor } = await cacheWithOldEntry({ beforeClaim: claims.hook });
    expect(await evictor.evict(slot, LONG_AGO - 1)).toBe(false);
    expect(claims.times).toBe(0);
    expect(await lastUsed(slot)).toBe(LONG_AGO);
    await expectCompleteAndWhole(cache, slot);
  });

  it("does nothing to an absent, an incomplete or an already claimed slot", async () => {
    const cache = await makeCache();
    const claims = gate();
    const evictor = (await makeCache({ root: cache.root, hooks: { beforeClaim: claims.hook } })).store;
    expect(await evictor.evict(cache.slot("none"), LONG_AGO)).toBe(false);

    const incomplete = cache.slot("inc");
    await mkdir(join(incomplete, "d"), { recursive: true });
    expect(await evictor.evict(incomplete, LONG_AGO)).toBe(false);
    expect(await namesIn(incomplete)).toEqual(["d"]);

    await publishEntry(cache, "abc");
    const claimed = cache.slot("abc");
    const listed = await setLastUsed(claimed, LONG_AGO);
    await rename(join(claimed, SENTINEL), join(claimed, CLAIM));
    expect(await evictor.evict(claimed, listed)).toBe(false);
    expect(await markers(claimed)).toEqual([CLAIM]);
    expect(await treeProblem(claimed, "abc")).toBe("whole");

    const dirSentinel = cache.slot("dir");
    await mkdir(join(dirSentinel, SENTINEL), { recursive: true });
    expect(await evictor.evict(dirSentinel, LONG_AGO, { force: true })).toBe(false);
    expect(await namesIn(dirSentinel)).toEqual([SENTINEL]);
    expect(claims.times).toBe(0);
  });
});

describe("EntryStore.evict step 2: the claim", () => {
  it("gives up when another evictor claimed the entry between the re-stat and the claim", async () => {
    const { cache, slot, listed, evictor } = await cacheWithOldEntry({
      beforeClaim: (s) => rename(join(s, SENTINEL), join(s, CLAIM)),
    });
    expect(await evictor.evict(slot, listed)).toBe(false);
    // The other evictor's claim is left as it was, for it to finish.
    expect(await markers(slot)).toEqual([CLAIM]);
    expect(await treeProblem(slot, "abc")).toBe("whole");
    expect(await namesIn(cache.store.trashDir)).toEqual([]);
  });

  it("gives up when another evictor removed the entry between the re-stat and the claim", async () => {
    const { cache, slot, listed, evictor } = await cacheWithOldEntry({
      beforeClaim: async (s) => {
        expect(await cache.store.evict(s, listed)).toBe(true);
      },
    });
    expect(await evictor.evict(slot, listed)).toBe(false);
    await expectGone(cache, slot);
  });

  it("throws the rename's own error when the claim cannot be made, and leaves the entry complete", async () => {
    const { slot, listed, evictor } = await cacheWithOldEntry();
    await mkdir(join(slot, CLAIM, "in-the-way"), { recursive: true });
    const error = await evictor.evict(slot, listed).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "EISDIR", syscall: "rename" });
    expect(await markers(slot)).toEqual([SENTINEL]);
    expect(await lastUsed(slot)).toBe(listed);
  });
});

describe("EntryStore.evict step 3: the claim check", () => {
  it("keeps an entry a hit touched between the re-stat and the claim in place: the claim is given back at once", async () => {
    const cache = await makeCache();
    let hit: boolean | undefined;
    const moves = gate();
    const evictor = (
      await makeCache({
        root: cache.root,
        hooks: {
          beforeClaim: async (s) => {
            hit = await cache.store.touch(s);
          },
          beforeTrash: moves.hook,
        },
      })
    ).store;
    await publishEntry(cache, "abc");
    const slot = cache.slot("abc");
    const listed = await setLastUsed(slot, LONG_AGO);
    expect(await evictor.evict(slot, listed)).toBe(false);
    expect(hit).toBe(true);
    // The hit returned this path: the entry must not even leave it for a moment (the late check would
    // bring it back, but a reader could find it gone meanwhile).
    expect(moves.times).toBe(0);
    expect(await lastUsed(slot)).toBeGreaterThan(listed);
    await expectCompleteAndWhole(cache, slot);
  });

  it("keeps an entry whose touch resolved the sentinel before the claim and confirms after it is given back", async () => {
    // The hit's utimes lands before the claim; its confirmation runs only after the evictor saw the new
    // mtime on the claim and gave it back: the hit is a hit and the entry stays.
    const cache = await makeCache();
    const confirm = gate();
    const toucher = (await makeCache({ root: cache.root, hooks: { afterTouch: confirm.hook } })).store;
    let touching: Promise<boolean> = Promise.resolve(false);
    const evictor = (
      await makeCache({
        root: cache.root,
        hooks: {
          beforeClaim: async (s) => {
            touching = toucher.touch(s);
            await confirm.reached;
          },
        },
      })
    ).store;
    await publishEntry(cache, "abc");
    const slot = cache.slot("abc");
    const listed = await setLastUsed(slot, LONG_AGO);
    expect(await evictor.evict(slot, listed)).toBe(false);
    confirm.release();
    expect(await touching).toBe(true);
    await expectCompleteAndWhole(cache, slot);
  });
});

describe("EntryStore.evict step 4: the move to the trash", () => {
  it("lets a hit during the claim miss, and removes the entry", async () => {
    let hit: boolean | undefined;
    let state = "";
    const { cache, slot, listed, evictor } = await cacheWithOldEntry({
      beforeTrash: async (s) => {
        state = (await evictor.inspect(s)).state;
        hit = await evictor.touch(s);
      },
    });
    expect(await evictor.evict(slot, listed)).toBe(true);
    expect(state).toBe("claimed");
    expect(hit).toBe(false);
    await expectGone(cache, slot);
  });

  it("gives up quietly when the claimed slot vanished before the move (given back and evicted by another)", async () => {
    const { cache, slot, listed, evictor } = await cacheWithOldEntry({
      beforeTrash: async (s) => {
        // A repair that thought this evictor dead gives the entry back; another evictor then removes it.
        const repairer = await makeCache({ root: cache.root, claimGraceMs: 0 });
        expect(await repairer.store.repairClaim(s)).toBe(true);
        expect(await cache.store.evict(s, await lastUsed(s))).toBe(true);
      },
    });
    expect(await evictor.evict(slot, listed)).toBe(false);
    await expectGone(cache, slot);
  });

  it("gives the claim back and throws CasError ENOENT naming the slot when the trash directory is missing", async () => {
    const { cache, slot, listed, evictor } = await cacheWithOldEntry({
      beforeTrash: () => rm(cache.store.trashDir, { recursive: true }),
    });
    const error = (await evictor.evict(slot, listed).catch((e: unknown) => e)) as CasError;
    expect(error).toBeInstanceOf(CasError);
    expect(error.code).toBe("ENOENT");
    expect(error.path).toBe(slot);
    expect(error.message).toMatch(
      /^cannot move .*abc to the trash: ENOENT: no such file or directory, rename/,
    );
    expect((error.cause as NodeJS.ErrnoException).code).toBe("ENOENT");
    await cache.store.prepare();
    await expectCompleteAndWhole(cache, slot);
    expect(await lastUsed(slot)).toBe(listed);
  });

  it("reports a broken trash even when the slot vanished too, instead of taking it for a quiet loss", async () => {
    const { cache, slot, listed, evictor } = await cacheWithOldEntry({
      beforeTrash: async (s) => {
        await rename(s, join(cache.root, "moved-away"));
        await rm(cache.store.trashDir, { recursive: true });
        await writeFile(cache.store.trashDir, "not a directory");
      },
    });
    await expect(evictor.evict(slot, listed)).rejects.toMatchObject({
      name: "CasError",
      code: "ENOTDIR",
      path: slot,
    });
  });

  it("gives the claim back and throws CasError ENOTDIR when the trash is not a directory", async () => {
    const { cache, slot, listed, evictor } = await cacheWithOldEntry({
      beforeTrash: async () => {
        await rm(cache.store.trashDir, { recursive: true });
        await writeFile(cache.store.trashDir, "not a directory");
      },
    });
    await expect(evictor.evict(slot, listed)).rejects.toMatchObject({ name: "CasError", code: "ENOTDIR" });
    expect(await markers(slot)).toEqual([SENTINEL]);
    expect(await treeProblem(slot, "abc")).toBe("whole");
  });

  kernelTest(
    "mountTmpfs",
    "gives the claim back and throws CasError EXDEV when the trash is on another filesystem",
    async () => {
      const { cache, slot, listed, evictor } = await cacheWithOldEntry();
      mountTmpfs(cache.store.trashDir, "1m");
      undo.push(() => unmount(cache.store.trashDir));
      const error = (await evictor.evict(slot, listed).catch((e: unknown) => e)) as CasError;
      expect(error).toBeInstanceOf(CasError);
      expect(error.code).toBe("EXDEV");
      expect(error.path).toBe(slot);
      await expectCompleteAndWhole(cache, slot);
    },
  );
});

describe("EntryStore.evict step 5: the late check", () => {
  it("restores the entry whole when a touch that resolved the sentinel before the claim lands after the move", async () => {
    // A touch resolves the path to the sentinel's inode, then sets its times: between the two the evictor
    // can claim, check and move. Holding the inode open reproduces that late landing exactly.
    let handle: Awaited<ReturnType<typeof open>> | undefined;
    const { cache, slot, listed, evictor } = await cacheWithOldEntry({
      beforeClaim: async (s) => {
        handle = await open(join(s, SENTINEL), "r");
      },
      afterTrash: async () => {
        const now = new Date();
        await handle?.utimes(now, now);
        await handle?.close();
      },
    });
    expect(await evictor.evict(slot, listed)).toBe(false);
    await expectCompleteAndWhole(cache, slot);
    expect(await lastUsed(slot)).toBeGreaterThan(listed);
  });

  it("restores the entry into its fan-out dir even when a pass removed that emptied dir meanwhile", async () => {
    const { cache, slot, listed, evictor } = await cacheWithOldEntry({
      afterTrash: async (s, trash) => {
        const now = new Date();
        const handle = await open(join(trash, CLAIM), "r");
        await handle.utimes(now, now);
        await handle.close();
        await rmdir(join(s, ".."));
      },
    });
    expect(await evictor.evict(slot, listed)).toBe(false);
    await expectCompleteAndWhole(cache, slot);
  });

  it("restores the entry when a repair gave the claim back before the move", async () => {
    const { cache, slot, listed, evictor } = await cacheWithOldEntry({
      beforeTrash: async (s) => {
        const repairer = await makeCache({ root: cache.root, claimGraceMs: 0 });
        expect(await repairer.store.repairClaim(s)).toBe(true);
      },
    });
    expect(await evictor.evict(slot, listed)).toBe(false);
    await expectCompleteAndWhole(cache, slot);
    expect(await lastUsed(slot)).toBe(listed);
  });

  it("deletes its trash and reports the entry removed when the slot was rebuilt before it could restore", async () => {
    const { cache, slot, listed, evictor } = await cacheWithOldEntry({
      afterTrash: async (s, trash) => {
        const now = new Date();
        await open(join(trash, CLAIM), "r").then(async (h) => {
          await h.utimes(now, now);
          await h.close();
        });
        expect((await publishEntry(cache, "abc")).outcome).toBe("built");
        expect((await cache.store.inspect(s)).state).toBe("complete");
      },
    });
    expect(await evictor.evict(slot, listed)).toBe(true);
    await expectCompleteAndWhole(cache, slot);
    expect(await lastUsed(slot)).not.toBe(listed);
  });
});

describe("EntryStore.evict step 6: deleting the trash", () => {
  kernelTest(
    "chattr",
    "reports a trash it cannot delete through onWarning, and the entry as removed",
    async () => {
      let trashPath = "";
      const { cache, slot, listed, evictor, evictorWarnings } = await cacheWithOldEntry({
        afterTrash: (_s, trash) => {
          trashPath = trash;
        },
      });
      const stuck = join(slot, "d", "f0");
      chattr("+i", stuck);
      undo.push(() => chattr("-i", join(trashPath, "d", "f0")));
      expect(await evictor.evict(slot, listed)).toBe(true);
      expect((await cache.store.inspect(slot)).state).toBe("absent");
      expect(evictorWarnings).toEqual([{ message: "could not remove an evicted entry", path: trashPath }]);
      expect(await namesIn(join(trashPath, "d"))).toEqual(["f0"]);
    },
  );
});

describe("EntryStore.evict with force", () => {
  it("removes an entry whose sentinel changed since it was listed", async () => {
    const { cache, slot, evictor } = await cacheWithOldEntry();
    expect(await evictor.evict(slot, 0, { force: true })).toBe(true);
    await expectGone(cache, slot);
  });

  it("removes an entry a hit touched between the re-stat and the claim", async () => {
    let hit: boolean | undefined;
    const { cache, slot, listed, evictor } = await cacheWithOldEntry({
      beforeClaim: async (s) => {
        hit = await cache.store.touch(s);
      },
    });
    expect(await evictor.evict(slot, listed, { force: true })).toBe(true);
    expect(hit).toBe(true);
    await expectGone(cache, slot);
  });

  it("removes an entry even when a late touch lands after the move", async () => {
    const { cache, slot, listed, evictor } = await cacheWithOldEntry({
      afterTrash: async (_s, trash) => {
        const now = new Date();
        const handle = await open(join(trash, CLAIM), "r");
        await handle.utimes(now, now);
        await handle.close();
      },
    });
    expect(await evictor.evict(slot, listed, { force: true })).toBe(true);
    await expectGone(cache, slot);
  });

  it("still needs a complete entry: an absent or claimed slot is left alone", async () => {
    const { cache, slot, listed, evictor } = await cacheWithOldEntry();
    expect(await evictor.evict(cache.slot("none"), 0, { force: true })).toBe(false);
    await rename(join(slot, SENTINEL), join(slot, CLAIM));
    expect(await evictor.evict(slot, listed, { force: true })).toBe(false);
    expect(await markers(slot)).toEqual([CLAIM]);
  });
});
