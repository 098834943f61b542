// EntryStore's view of a slot (inspect) and its repairs (makeWay, repairClaim), on real files: what each
// state of a slot becomes, and that nothing whole is ever lost on the way.
import { lstat, mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { chattr, kernelTest } from "@cas-stage/test-support/kernel";
import { afterEach, describe, expect, it } from "vitest";
import { CasError, CLAIM_GRACE_MS, EntryStore } from "../src/index.js";
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
  treeProblem,
} from "./entries.js";
import { tempDir } from "./fixtures.js";

const undo: Array<() => void> = [];
afterEach(() => {
  for (const step of undo.splice(0).reverse()) step();
});

/** A cache with entry "abc" claimed by an evictor that is gone (or paused), last used LONG_AGO. */
async function cacheWithClaimedEntry(claimGraceMs?: number) {
  const cache = await makeCache(claimGraceMs === undefined ? {} : { claimGraceMs });
  await publishEntry(cache, "abc");
  const slot = cache.slot("abc");
  await setLastUsed(slot, LONG_AGO);
  await rename(join(slot, SENTINEL), join(slot, CLAIM));
  return { cache, slot };
}

describe("EntryStore construction", () => {
  it("refuses a sentinel and a claim in different directories of the slot", () => {
    const options = { stagingDir: "/s", trashDir: "/t", sentinel: "meta/done", claim: "claimed" };
    expect(() => new EntryStore(options)).toThrow(
      new TypeError("EntryStore: the sentinel and the claim must be in one directory of the slot"),
    );
    expect(() => new EntryStore({ ...options, claim: "meta/claimed" })).not.toThrow();
  });

  it("gives back claims older than two seconds unless told otherwise", () => {
    const options = { stagingDir: "/s", trashDir: "/t", sentinel: "a", claim: "b" };
    expect(CLAIM_GRACE_MS).toBe(2_000);
    expect(new EntryStore(options).claimGraceMs).toBe(2_000);
    expect(new EntryStore({ ...options, claimGraceMs: 5 }).claimGraceMs).toBe(5);
  });

  it("prepare() makes the staging and trash directories with their parents, and throws mkdir's error", async () => {
    const root = await tempDir();
    const store = new EntryStore({
      stagingDir: join(root, "a", "staging"),
      trashDir: join(root, "b", "trash"),
      sentinel: "s",
      claim: "c",
    });
    await store.prepare();
    await store.prepare();
    expect(await namesIn(join(root, "a"))).toEqual(["staging"]);
    expect(await namesIn(join(root, "b"))).toEqual(["trash"]);

    await writeFile(join(root, "file"), "");
    const blocked = new EntryStore({
      stagingDir: join(root, "file", "staging"),
      trashDir: join(root, "t"),
      sentinel: "s",
      claim: "c",
    });
    await expect(blocked.prepare()).rejects.toMatchObject({ code: "ENOTDIR" });
    const blockedTrash = new EntryStore({
      stagingDir: join(root, "s2"),
      trashDir: join(root, "file", "trash"),
      sentinel: "s",
      claim: "c",
    });
    await expect(blockedTrash.prepare()).rejects.toMatchObject({ code: "ENOTDIR" });
  });
});

describe("EntryStore.inspect", () => {
  it("tells absent, complete, claimed and incomplete slots apart", async () => {
    const cache = await makeCache();
    const { store } = cache;
    expect(await store.inspect(cache.slot("none"))).toEqual({ state: "absent" });

    await publishEntry(cache, "abc");
    const slot = cache.slot("abc");
    const used = await setLastUsed(slot, LONG_AGO);
    expect(await store.inspect(slot)).toEqual({ state: "complete", lastUsedMs: used });

    await rename(join(slot, SENTINEL), join(slot, CLAIM));
    const claimed = await store.inspect(slot);
    expect(claimed).toMatchObject({ state: "claimed", lastUsedMs: used });
    expect(claimed.state === "claimed" && claimed.ageMs).toBeLessThan(CLAIM_GRACE_MS);

    const empty = cache.slot("empty");
    await mkdir(empty, { recursive: true });
    expect(await store.inspect(empty)).toEqual({ state: "incomplete" });
    const file = cache.slot("file");
    await mkdir(join(file, ".."), { recursive: true });
    await writeFile(file, "not a slot");
    expect(await store.inspect(file)).toEqual({ state: "incomplete" });
    const dirMarkers = cache.slot("dirs");
    await mkdir(join(dirMarkers, SENTINEL), { recursive: true });
    await mkdir(join(dirMarkers, CLAIM));
    expect(await store.inspect(dirMarkers)).toEqual({ state: "incomplete" });
    expect(await store.inspect(join(file, "below-a-file"))).toEqual({ state: "absent" });
  });

  it("takes a slot holding both markers as complete", async () => {
    const cache = await makeCache();
    await publishEntry(cache, "abc");
    const slot = cache.slot("abc");
    await writeFile(join(slot, CLAIM), "");
    expect((await cache.store.inspect(slot)).state).toBe("complete");
  });

  it("never reports a negative claim age, even within the millisecond of the claim", async () => {
    const { cache, slot } = await cacheWithClaimedEntry();
    for (let i = 0; i < 200; i++) {
      await rename(join(slot, CLAIM), join(slot, SENTINEL));
      await rename(join(slot, SENTINEL), join(slot, CLAIM));
      const found = await cache.store.inspect(slot);
      expect(found.state === "claimed" && found.ageMs, `claim ${i}`).toBeGreaterThanOrEqual(0);
    }
  });
});

describe("EntryStore.repairClaim", () => {
  it("gives back a claim older than the grace: the entry is whole, its last use kept, with one warning", async () => {
    const { cache, slot } = await cacheWithClaimedEntry(0);
    expect(await cache.store.repairClaim(slot)).toBe(true);
    expect(await markers(slot)).toEqual([SENTINEL]);
    expect(await treeProblem(slot, "abc")).toBe("whole");
    expect(await lastUsed(slot)).toBe(LONG_AGO);
    expect(cache.warnings).toEqual([
      { message: "gave back an entry whose eviction was interrupted", path: slot },
    ]);
  });

  it("with claimGraceMs 0 gives back every claim, even one made within the same millisecond", async () => {
    const { cache, slot } = await cacheWithClaimedEntry(0);
    for (let i = 0; i < 100; i++) {
      expect(await cache.store.repairClaim(slot), `claim ${i}`).toBe(true);
      await rename(join(slot, SENTINEL), join(slot, CLAIM));
    }
  });

  it("leaves a young claim to its evictor", async () => {
    const { cache, slot } = await cacheWithClaimedEntry(60_000);
    expect(await cache.store.repairClaim(slot)).toBe(false);
    expect(await markers(slot)).toEqual([CLAIM]);
    expect(cache.warnings).toEqual([]);
  });

  it("does nothing to complete, absent and incomplete slots", async () => {
    const cache = await makeCache({ claimGraceMs: 0 });
    await publishEntry(cache, "abc");
    expect(await cache.store.repairClaim(cache.slot("abc"))).toBe(false);
    expect(await cache.store.repairClaim(cache.slot("none"))).toBe(false);
    await mkdir(cache.slot("inc"), { recursive: true });
    expect(await cache.store.repairClaim(cache.slot("inc"))).toBe(false);
    expect(await namesIn(cache.slot("inc"))).toEqual([]);
    expect(cache.warnings).toEqual([]);
  });
});

describe("EntryStore.makeWay", () => {
  it("leaves a complete entry and an absent slot as they are", async () => {
    const cache = await makeCache();
    await publishEntry(cache, "abc");
    // A rename of the slot (even out and straight back) would change its ctime.
    const before = await lstat(cache.slot("abc"));
    await cache.store.makeWay(cache.slot("abc"));
    expect((await lstat(cache.slot("abc"))).ctimeMs).toBe(before.ctimeMs);
    expect(await treeProblem(cache.slot("abc"), "abc")).toBe("whole");
    expect(await markers(cache.slot("abc"))).toEqual([SENTINEL]);
    await cache.store.makeWay(cache.slot("none"));
    expect(cache.warnings).toEqual([]);
  });

  it("removes an incomplete directory through the trash, with a warning", async () => {
    const cache = await makeCache();
    const slot = cache.slot("abc");
    await mkdir(join(slot, "d"), { recursive: true });
    await writeFile(join(slot, "d", "f0"), "partial");
    await cache.store.makeWay(slot);
    expect((await cache.store.inspect(slot)).state).toBe("absent");
    expect(await namesIn(cache.store.trashDir)).toEqual([]);
    expect(cache.warnings).toEqual([
      { message: "removed an incomplete entry left by another writer", path: slot },
    ]);
  });

  it("lets two repairs of the same debris run at once: both return, the debris goes once", async () => {
    for (let round = 0; round < 20; round++) {
      const cache = await makeCache();
      const other = await makeCache({ root: cache.root });
      const empty = cache.slot("abc");
      const full = cache.slot("abd");
      await mkdir(empty, { recursive: true });
      await mkdir(join(full, "d"), { recursive: true });
      await writeFile(join(full, "d", "f0"), "half");
      await Promise.all([
        cache.store.makeWay(empty),
        other.store.makeWay(empty),
        cache.store.makeWay(full),
        other.store.makeWay(full),
      ]);
      for (const slot of [empty, full]) expect((await cache.store.inspect(slot)).state).toBe("absent");
      expect([...cache.warnings, ...other.warnings]).toEqual([
        { message: "removed an incomplete entry left by another writer", path: full },
      ]);
      expect(await namesIn(cache.store.trashDir)).toEqual([]);
    }
  });

  it("removes an empty directory without a warning", async () => {
    const cache = await makeCache();
    const slot = cache.slot("abc");
    await mkdir(slot, { recursive: true });
    await cache.store.makeWay(slot);
    expect((await cache.store.inspect(slot)).state).toBe("absent");
    expect(cache.warnings).toEqual([]);
  });

  it("removes a file in the slot's place, with a warning", async () => {
    const cache = await makeCache();
    const slot = cache.slot("abc");
    await mkdir(join(slot, ".."), { recursive: true });
    await writeFile(slot, "a file");
    await cache.store.makeWay(slot);
    expect((await cache.store.inspect(slot)).state).toBe("absent");
    expect(await namesIn(cache.store.trashDir)).toEqual([]);
    expect(cache.warnings).toHaveLength(1);
  });

  it("throws CasError naming the slot, instead of returning with the debris in place, when the trash is missing", async () => {
    const cache = await makeCache();
    const slot = cache.slot("abc");
    await mkdir(join(slot, "d"), { recursive: true });
    await rm(cache.store.trashDir, { recursive: true });
    const error = (await cache.store.makeWay(slot).catch((e: unknown) => e)) as CasError;
    expect(error).toBeInstanceOf(CasError);
    expect(error.code).toBe("ENOENT");
    expect(error.path).toBe(slot);
    expect(error.message).toMatch(/^cannot move aside the incomplete entry .*abc: ENOENT/);
    expect(await namesIn(slot)).toEqual(["d"]);
  });

  kernelTest("chattr", "throws CasError EPERM naming the slot when the debris cannot be moved", async () => {
    const cache = await makeCache();
    const slot = cache.slot("abc");
    await mkdir(join(slot, "d"), { recursive: true });
    const fanOut = join(slot, "..");
    chattr("+i", fanOut);
    undo.push(() => chattr("-i", fanOut));
    const error = (await cache.store.makeWay(slot).catch((e: unknown) => e)) as CasError;
    expect(error).toBeInstanceOf(CasError);
    expect(error.code).toBe("EPERM");
    expect(error.path).toBe(slot);
    expect(await namesIn(slot)).toEqual(["d"]);

    const emptySlot = cache.slot("abd");
    chattr("-i", fanOut);
    await mkdir(emptySlot);
    chattr("+i", fanOut);
    await expect(cache.store.makeWay(emptySlot)).rejects.toMatchObject({ name: "CasError", code: "EPERM" });
  });

  it("gives back an entry whose evictor died (an old claim), with a warning", async () => {
    const { cache, slot } = await cacheWithClaimedEntry(0);
    await cache.store.makeWay(slot);
    expect(await markers(slot)).toEqual([SENTINEL]);
    expect(await treeProblem(slot, "abc")).toBe("whole");
    expect(await lastUsed(slot)).toBe(LONG_AGO);
    expect(cache.warnings).toEqual([
      { message: "gave back an entry whose eviction was interrupted", path: slot },
    ]);
  });

  it("waits for an eviction in progress (a young claim) and returns once it removed the entry", async () => {
    const cache = await makeCache();
    await publishEntry(cache, "abc");
    const slot = cache.slot("abc");
    const listed = await setLastUsed(slot, LONG_AGO);
    const held = gate();
    const evictor = (await makeCache({ root: cache.root, hooks: { beforeTrash: held.hook } })).store;
    const evicting = evictor.evict(slot, listed);
    await held.reached;
    let settled = false;
    const waiting = cache.store.makeWay(slot).finally(() => {
      settled = true;
    });
    await sleep(30); // room for several polls; makeWay must still be waiting, not giving the claim back
    expect(settled).toBe(false);
    expect(await markers(slot)).toEqual([CLAIM]);
    held.release();
    expect(await evicting).toBe(true);
    await waiting;
    expect((await cache.store.inspect(slot)).state).toBe("absent");
    expect(cache.warnings).toEqual([]);
  });

  it("stops waiting for an eviction in progress when its signal aborts, leaving the claim alone", async () => {
    const { cache, slot } = await cacheWithClaimedEntry(60_000);
    const controller = new AbortController();
    const reason = new Error("caller gave up");
    const waiting = cache.store.makeWay(slot, controller.signal);
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(await markers(slot)).toEqual([CLAIM]);
  });
});
