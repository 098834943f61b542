// EntryStore.touch, the hit: marks an entry used and proves it complete, on real files, a real read-only
// mount and a real immutable sentinel. Another user's entries: entry-users.test.ts.
import { mkdir, readFile, rename, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { bindReadOnly, chattr, kernelTest, unmount } from "@cas-stage/test-support/kernel";
import { afterEach, describe, expect, it } from "vitest";
import {
  CLAIM,
  gate,
  LONG_AGO,
  lastUsed,
  makeCache,
  markers,
  publishEntry,
  SENTINEL,
  sentinelContent,
  setLastUsed,
  treeProblem,
} from "./entries.js";

const undo: Array<() => void> = [];
afterEach(() => {
  for (const step of undo.splice(0).reverse()) step();
});

async function cacheWithOldEntry() {
  const cache = await makeCache();
  await publishEntry(cache, "abc");
  const slot = cache.slot("abc");
  await setLastUsed(slot, LONG_AGO);
  return { cache, slot };
}

describe("EntryStore.touch", () => {
  it("marks a complete entry used now and resolves true", async () => {
    const { cache, slot } = await cacheWithOldEntry();
    const before = Date.now();
    expect(await cache.store.touch(slot)).toBe(true);
    expect(await lastUsed(slot)).toBeGreaterThanOrEqual(before - 1000);
    expect(await treeProblem(slot, "abc")).toBe("whole");
    expect(await readFile(join(slot, SENTINEL), "utf8")).toBe(sentinelContent("abc"));
    expect(cache.warnings).toEqual([]);
  });

  it("resolves false for an absent slot, a slot under a file, an incomplete slot and a sentinel that is not a file", async () => {
    const cache = await makeCache();
    expect(await cache.store.touch(cache.slot("none"))).toBe(false);
    const file = cache.slot("file");
    await mkdir(join(file, ".."), { recursive: true });
    await writeFile(file, "x");
    expect(await cache.store.touch(file)).toBe(false);
    const incomplete = cache.slot("inc");
    await mkdir(join(incomplete, "d"), { recursive: true });
    expect(await cache.store.touch(incomplete)).toBe(false);
    const dirSentinel = cache.slot("dir");
    await mkdir(join(dirSentinel, SENTINEL), { recursive: true });
    expect(await cache.store.touch(dirSentinel)).toBe(false);
  });

  it("resolves false for a claimed entry and leaves the claim's time alone, so its evictor goes on", async () => {
    const { cache, slot } = await cacheWithOldEntry();
    await rename(join(slot, SENTINEL), join(slot, CLAIM));
    expect(await cache.store.touch(slot)).toBe(false);
    expect(await lastUsed(slot, CLAIM)).toBe(LONG_AGO);
    expect(await markers(slot)).toEqual([CLAIM]);
  });

  it("throws other filesystem errors as they are", async () => {
    const cache = await makeCache();
    const looping = cache.slot("abc");
    await mkdir(looping, { recursive: true });
    await symlink(SENTINEL, join(looping, SENTINEL));
    await expect(cache.store.touch(looping)).rejects.toMatchObject({ code: "ELOOP", syscall: "utime" });
    const tooLong = cache.slot(`ab${"x".repeat(300)}`);
    await mkdir(join(tooLong, ".."), { recursive: true });
    await expect(cache.store.touch(tooLong)).rejects.toMatchObject({ code: "ENAMETOOLONG" });
  });

  it("resolves false when an evictor claimed the entry between setting the time and confirming it", async () => {
    // The touch resolved the sentinel before the claim; its confirmation comes after: a miss, so the caller
    // never holds a path that is on its way out.
    const cache = await makeCache();
    await publishEntry(cache, "abc");
    const slot = cache.slot("abc");
    const held = gate();
    const evictor = (await makeCache({ root: cache.root, hooks: { beforeTrash: held.hook } })).store;
    let evicting: Promise<boolean> = Promise.resolve(false);
    const toucher = (
      await makeCache({
        root: cache.root,
        hooks: {
          afterTouch: async (s) => {
            // An eviction pass that listed the entry after this touch set its time.
            evicting = evictor.evict(s, await lastUsed(s));
            await held.reached;
          },
        },
      })
    ).store;
    expect(await toucher.touch(slot)).toBe(false);
    held.release();
    expect(await evicting).toBe(true);
    expect((await cache.store.inspect(slot)).state).toBe("absent");
  });

  it("resolves true when the entry it touched is given back before it confirms", async () => {
    const cache = await makeCache();
    await publishEntry(cache, "abc");
    const slot = cache.slot("abc");
    const toucher = (
      await makeCache({
        root: cache.root,
        hooks: {
          afterTouch: async (s) => {
            await rename(join(s, SENTINEL), join(s, CLAIM));
            await rename(join(s, CLAIM), join(s, SENTINEL));
          },
        },
      })
    ).store;
    expect(await toucher.touch(slot)).toBe(true);
  });

  kernelTest(
    "chattr",
    "takes a readable entry whose use it can record neither way (EPERM) as a hit, with a single warning",
    async () => {
      const { cache, slot } = await cacheWithOldEntry();
      const sentinel = join(slot, SENTINEL);
      chattr("+i", sentinel);
      undo.push(() => chattr("-i", sentinel));
      expect(await cache.store.touch(slot)).toBe(true);
      expect(await cache.store.touch(slot)).toBe(true);
      expect(await lastUsed(slot)).toBe(LONG_AGO);
      expect(cache.warnings).toEqual([
        {
          message:
            "cannot mark entries of another user as used (no write permission): their owner's eviction does not see this use",
          path: slot,
        },
      ]);
    },
  );

  kernelTest(
    "bindReadOnly",
    "takes an entry on a read-only filesystem as a hit, without a warning",
    async () => {
      const { cache, slot } = await cacheWithOldEntry();
      bindReadOnly(cache.root);
      undo.push(() => unmount(cache.root));
      expect(await cache.store.touch(slot)).toBe(true);
      expect(await cache.store.touch(slot)).toBe(true);
      expect(await lastUsed(slot)).toBe(LONG_AGO);
      expect(cache.warnings).toEqual([]);
    },
  );
});
