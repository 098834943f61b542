// The trash: where slots are deleted after leaving in one rename; who may delete what, and when. On real
// files; the "slow evictor" windows are held open with EntryStore's hooks.
import { mkdir, open, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { chattr, kernelTest } from "@cas-stage/test-support/kernel";
import { afterEach, describe, expect, it } from "vitest";
import { TRASH_GRACE_MS } from "../src/index.js";
import { removeAbandonedTrash, trashCreatedAt, trashPathFor } from "../src/trash.js";
import { CLAIM, gate, LONG_AGO, makeCache, markers, namesIn, publishEntry, setLastUsed } from "./entries.js";
import { tempDir } from "./fixtures.js";

const undo: Array<() => void> = [];
afterEach(() => {
  for (const step of undo.splice(0).reverse()) step();
});

const NOW = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
const MINUTE = 60_000;

/** A trash dir holding, under `name`, a small tree. */
async function trashed(trashDir: string, name: string): Promise<string> {
  const path = join(trashDir, name);
  await mkdir(join(path, "d"), { recursive: true });
  await writeFile(join(path, "d", "f"), "x");
  return path;
}

describe("trash names", () => {
  it("names a slot's trash <slot name>.<ms since epoch, base 36>.<12 hex> inside the trash dir", () => {
    const path = trashPathFor("/cache/.trash", "/cache/ab/abc", NOW);
    expect(path).toMatch(/^\/cache\/\.trash\/abc\.[0-9a-z]+\.[0-9a-f]{12}$/);
    expect(path.split(".")[2]).toBe(NOW.toString(36));
    expect(trashPathFor("/t", "/c/ab/abc", NOW)).not.toBe(trashPathFor("/t", "/c/ab/abc", NOW));
  });

  it("stamps the current time by default", () => {
    const before = Date.now();
    const stamped = trashCreatedAt(trashPathFor("/t", "/c/x").slice(3)) ?? 0;
    expect(stamped).toBeGreaterThanOrEqual(before);
    expect(stamped).toBeLessThanOrEqual(Date.now());
  });

  it("reads back the time of a trash name, and nothing from a name it did not make", () => {
    expect(trashCreatedAt(`abc.${NOW.toString(36)}.0123456789ab`)).toBe(NOW);
    expect(trashCreatedAt(`a.b.c.${NOW.toString(36)}.0123456789ab`)).toBe(NOW);
    for (const foreign of [
      "abc",
      `abc.${NOW.toString(36)}.0123456789ab.deleting`,
      `abc.${NOW.toString(36)}.0123456789AB`,
      `abc.${NOW.toString(36)}.0123456789a`,
      `abc.${NOW.toString(36)}-0123456789ab`,
      `abc.${NOW.toString(36).toUpperCase()}.0123456789ab`,
      `abc..0123456789ab`,
      // A time too large for a number.
      `a.${"z".repeat(200)}.0123456789ab`,
    ]) {
      expect(trashCreatedAt(foreign), foreign).toBeUndefined();
    }
  });
});

describe("removeAbandonedTrash", () => {
  it("keeps trash younger than the grace, which its evictor may still restore", async () => {
    const trashDir = await tempDir();
    const young = await trashed(trashDir, `abc.${(NOW - MINUTE + 1).toString(36)}.0123456789ab`);
    expect(await removeAbandonedTrash(trashDir, { graceMs: MINUTE, now: NOW })).toEqual({ paths: [] });
    expect(await namesIn(trashDir)).toEqual([young.slice(trashDir.length + 1)]);
  });

  it("removes trash made the grace or longer ago, .deleting dirs of any age, and names it did not make", async () => {
    const trashDir = await tempDir();
    const exact = await trashed(trashDir, `abc.${(NOW - MINUTE).toString(36)}.0123456789ab`);
    const old = await trashed(trashDir, `abd.${LONG_AGO.toString(36)}.0123456789ab`);
    const deleting = await trashed(trashDir, `abe.${NOW.toString(36)}.0123456789ab.deleting`);
    const foreign = await trashed(trashDir, "left-by-hand");
    await writeFile(join(trashDir, "a-file"), "x");
    const warnings: string[] = [];
    const { paths } = await removeAbandonedTrash(trashDir, {
      graceMs: MINUTE,
      now: NOW,
      onWarning: (message) => warnings.push(message),
    });
    expect(paths.sort()).toEqual([exact, old, deleting, foreign, join(trashDir, "a-file")].sort());
    expect(await namesIn(trashDir)).toEqual([]);
    expect(warnings).toEqual([]);
  });

  it("measures age against the clock by default", async () => {
    const trashDir = await tempDir();
    await trashed(trashDir, `abc.${(Date.now() + MINUTE).toString(36)}.0123456789ab`);
    const old = await trashed(trashDir, `abd.${(Date.now() - 2 * MINUTE).toString(36)}.0123456789ab`);
    expect(await removeAbandonedTrash(trashDir, { graceMs: MINUTE })).toEqual({ paths: [old] });
  });

  it("removes nothing and warns of nothing when the trash dir is missing or not a directory", async () => {
    const root = await tempDir();
    const warnings: string[] = [];
    const onWarning = (message: string) => warnings.push(message);
    expect(await removeAbandonedTrash(join(root, "none"), { graceMs: 0, onWarning })).toEqual({ paths: [] });
    await writeFile(join(root, "file"), "x");
    expect(await removeAbandonedTrash(join(root, "file"), { graceMs: 0, onWarning })).toEqual({ paths: [] });
    expect(warnings).toEqual([]);
  });

  it("warns, without throwing, when the trash dir cannot be listed", async () => {
    const root = await tempDir();
    const loop = join(root, "loop");
    await symlink(loop, loop);
    const warnings: Array<[string, string]> = [];
    const result = await removeAbandonedTrash(loop, {
      graceMs: 0,
      onWarning: (message, path) => warnings.push([message, path]),
    });
    expect(result).toEqual({ paths: [] });
    expect(warnings).toEqual([[expect.stringMatching(/^cannot list the trash: ELOOP/), loop]]);
    await expect(removeAbandonedTrash(loop, { graceMs: 0 })).resolves.toEqual({ paths: [] });
  });

  kernelTest("chattr", "warns about trash it cannot take or delete, and goes on with the rest", async () => {
    const root = await tempDir();
    const trashDir = join(root, "trash");
    const stuck = await trashed(trashDir, `abc.${LONG_AGO.toString(36)}.0123456789ab`);
    const other = await trashed(trashDir, `abd.${LONG_AGO.toString(36)}.0123456789ab`);
    chattr("+i", join(stuck, "d", "f"));
    undo.push(() => chattr("-i", join(`${stuck}.deleting`, "d", "f")));
    const warnings: Array<[string, string]> = [];
    const onWarning = (message: string, path: string) => warnings.push([message, path]);
    const { paths } = await removeAbandonedTrash(trashDir, { graceMs: 0, onWarning });
    expect(paths).toEqual([other]);
    expect(warnings).toEqual([[expect.stringMatching(/^cannot remove trash: /), `${stuck}.deleting`]]);
    expect(await namesIn(trashDir)).toEqual([`${stuck.slice(trashDir.length + 1)}.deleting`]);
    // Without onWarning the same failure is silent, and still not thrown.
    await expect(removeAbandonedTrash(trashDir, { graceMs: 0 })).resolves.toEqual({ paths: [] });

    // An immutable trash dir: nothing can be renamed out of the way.
    const frozen = await tempDir();
    const held = await trashed(frozen, `abe.${LONG_AGO.toString(36)}.0123456789ab`);
    chattr("+i", frozen);
    undo.push(() => chattr("-i", frozen));
    warnings.length = 0;
    expect(await removeAbandonedTrash(frozen, { graceMs: 0, onWarning })).toEqual({ paths: [] });
    expect(warnings).toEqual([[expect.stringMatching(/^cannot remove trash: EPERM/), held]]);
    await expect(removeAbandonedTrash(frozen, { graceMs: 0 })).resolves.toEqual({ paths: [] });
  });

  it("lets two cleaners run at once: everything goes once, with no warning", async () => {
    const trashDir = await tempDir();
    const all: string[] = [];
    for (let i = 0; i < 40; i++)
      all.push(await trashed(trashDir, `e${i}.${LONG_AGO.toString(36)}.0123456789ab`));
    const warnings: string[] = [];
    const onWarning = (message: string) => warnings.push(message);
    const [a, b] = await Promise.all([
      removeAbandonedTrash(trashDir, { graceMs: 0, onWarning }),
      removeAbandonedTrash(trashDir, { graceMs: 0, onWarning }),
    ]);
    expect(new Set([...a.paths, ...b.paths])).toEqual(new Set(all));
    expect(await namesIn(trashDir)).toEqual([]);
    expect(warnings).toEqual([]);
  });
});

describe("EntryStore.removeAbandonedTrash", () => {
  it(`keeps trash younger than TRASH_GRACE_MS (${TRASH_GRACE_MS} ms) by default and reports through onWarning`, async () => {
    expect(TRASH_GRACE_MS).toBe(60_000);
    const cache = await makeCache();
    const trashDir = cache.store.trashDir;
    const young = await trashed(trashDir, `abc.${(Date.now() - 50_000).toString(36)}.0123456789ab`);
    const old = await trashed(trashDir, `abd.${(Date.now() - 70_000).toString(36)}.0123456789ab`);
    expect(await cache.store.removeAbandonedTrash()).toEqual({ paths: [old] });
    expect(await namesIn(trashDir)).toEqual([young.slice(trashDir.length + 1)]);
    expect(await cache.store.removeAbandonedTrash(0)).toEqual({ paths: [young] });

    await rm(trashDir, { recursive: true });
    const loop = trashDir;
    await symlink(loop, loop);
    expect(await cache.store.removeAbandonedTrash(0)).toEqual({ paths: [] });
    expect(cache.warnings).toEqual([
      { message: expect.stringMatching(/^cannot list the trash/), path: loop },
    ]);
  });
});

describe("a slow evictor and another process's cleaner", () => {
  it("cannot restore its trash once another process renamed it to .deleting, so a half-deleted tree stays dead", async () => {
    const cache = await makeCache();
    await publishEntry(cache, "abc");
    const slot = cache.slot("abc");
    const listed = await setLastUsed(slot, LONG_AGO);
    const evictor = (
      await makeCache({
        root: cache.root,
        hooks: {
          afterTrash: async (_s, trash) => {
            // The evictor stalls past the grace; a cleaner elsewhere takes its trash and deletes part of it.
            await rename(trash, `${trash}.deleting`);
            await rm(join(`${trash}.deleting`, "d", "f1"));
            // A late touch had landed on the claim, so the evictor wants the entry back.
            const now = new Date();
            const handle = await open(join(`${trash}.deleting`, CLAIM), "r");
            await handle.utimes(now, now);
            await handle.close();
          },
        },
      })
    ).store;
    expect(await evictor.evict(slot, listed)).toBe(true);
    expect((await cache.store.inspect(slot)).state).toBe("absent");
  });

  kernelTest(
    "chattr",
    "with a real cleaner that could delete only part of the trash, the slot stays absent, not resurrected",
    async () => {
      const cache = await makeCache();
      await publishEntry(cache, "abc");
      const slot = cache.slot("abc");
      const listed = await setLastUsed(slot, LONG_AGO);
      let trashPath = "";
      const held = gate();
      const evictor = (
        await makeCache({
          root: cache.root,
          hooks: {
            afterTrash: async (_s, trash) => {
              trashPath = trash;
              await held.hook();
            },
          },
        })
      ).store;
      const evicting = evictor.evict(slot, listed);
      await held.reached;
      // One file cannot be deleted: the cleaner leaves a half-deleted tree, its claim gone, which the
      // evictor, finding no claim, tries to give back.
      const stuck = join(trashPath, "d", "f0");
      chattr("+i", stuck);
      undo.push(() => chattr("-i", stuck.replace(trashPath, `${trashPath}.deleting`)));
      const cleaner = await makeCache({ root: cache.root });
      expect(await cleaner.store.removeAbandonedTrash(0)).toEqual({ paths: [] });
      expect(cleaner.warnings).toHaveLength(1);
      expect(await markers(`${trashPath}.deleting`)).toEqual([]);
      expect(await namesIn(join(`${trashPath}.deleting`, "d"))).toEqual(["f0"]);
      held.release();
      expect(await evicting).toBe(true);
      expect((await cache.store.inspect(slot)).state).toBe("absent");
    },
  );
});
