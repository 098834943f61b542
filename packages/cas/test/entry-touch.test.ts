// EntryStore.touch, the hit: marks an entry used and proves it complete, on real files; for another user's
// entry in a shared cache, with a real second user (nobody) and a real read-only mount.
import { execFile } from "node:child_process";
import { chmod, chown, lstat, mkdir, readFile, rename, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { bindReadOnly, kernelTest, nobody, unmount } from "@cas-stage/test-support/kernel";
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
  type TestCache,
  treeProblem,
} from "./entries.js";
import { tempDir } from "./fixtures.js";

const TOUCH_WORKER = join(import.meta.dirname, "workers", "touch-worker.mjs");
const run = promisify(execFile);

const undo: Array<() => void> = [];
const umask = process.umask();
afterEach(() => {
  process.umask(umask);
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

interface TouchReport {
  results: boolean[];
  warnings: Array<{ message: string; path: string }>;
  error?: { name: string; code: string; path: string; message: string };
}

/** Touches `slot` twice from a process running as nobody. */
async function touchAsNobody(cache: TestCache, slot: string): Promise<TouchReport> {
  const config = { root: cache.root, slot, sentinel: SENTINEL, claim: CLAIM, times: 2 };
  const { stdout } = await run(process.execPath, [TOUCH_WORKER, JSON.stringify(config)], { ...nobody });
  return JSON.parse(stdout) as TouchReport;
}

/**
 * A cache whose root other users may enter, holding entry "abc" published by root under `mask`, last used
 * LONG_AGO. With `group`, the root belongs to nobody's group with the setgid bit, so everything made in it
 * does too: a cache shared by a common group.
 */
async function sharedCache(mask: number, options: { group?: boolean } = {}) {
  const root = await tempDir();
  if (options.group) {
    await chown(root, 0, nobody.gid);
    await chmod(root, 0o2775);
  } else {
    await chmod(root, 0o755);
  }
  const cache = await makeCache({ root });
  const fanOut = join(cache.slot("abc"), "..");
  await mkdir(fanOut);
  await chmod(fanOut, options.group ? 0o2775 : 0o755);
  process.umask(mask);
  try {
    await publishEntry(cache, "abc");
  } finally {
    process.umask(umask);
  }
  const slot = cache.slot("abc");
  await setLastUsed(slot, LONG_AGO);
  return { cache, slot };
}

describe("EntryStore.touch on another user's entry", () => {
  kernelTest("otherUser", "marks a world-writable entry (umask 000) used by rewriting a byte", async () => {
    const { cache, slot } = await sharedCache(0o000);
    const report = await touchAsNobody(cache, slot);
    expect(report).toEqual({ results: [true, true], warnings: [] });
    expect(await lastUsed(slot)).toBeGreaterThan(LONG_AGO);
    expect(await readFile(join(slot, SENTINEL), "utf8")).toBe(sentinelContent("abc"));
    expect((await lstat(join(slot, SENTINEL))).uid).toBe(0);
  });

  kernelTest(
    "otherUser",
    "marks an entry of a common group (umask 002, setgid root) used by rewriting a byte",
    async () => {
      const { cache, slot } = await sharedCache(0o002, { group: true });
      const sentinel = await lstat(join(slot, SENTINEL));
      expect([sentinel.uid, sentinel.gid, sentinel.mode & 0o777]).toEqual([0, nobody.gid, 0o664]);
      const report = await touchAsNobody(cache, slot);
      expect(report).toEqual({ results: [true, true], warnings: [] });
      expect(await lastUsed(slot)).toBeGreaterThan(LONG_AGO);
      expect(await readFile(join(slot, SENTINEL), "utf8")).toBe(sentinelContent("abc"));
    },
  );

  kernelTest("otherUser", "takes a read-only entry (umask 022) as a hit, with one warning", async () => {
    const { cache, slot } = await sharedCache(0o022);
    const report = await touchAsNobody(cache, slot);
    expect(report).toEqual({
      results: [true, true],
      warnings: [
        {
          message:
            "cannot mark entries of another user as used (no write permission): their owner's eviction does not see this use",
          path: slot,
        },
      ],
    });
    expect(await lastUsed(slot)).toBe(LONG_AGO);
  });

  kernelTest(
    "otherUser",
    "takes an entry with an empty sentinel it cannot rewrite as a hit, with a warning",
    async () => {
      const { cache, slot } = await sharedCache(0o000);
      await writeFile(join(slot, SENTINEL), "");
      await utimes(join(slot, SENTINEL), new Date(LONG_AGO), new Date(LONG_AGO));
      const report = await touchAsNobody(cache, slot);
      expect(report.results).toEqual([true, true]);
      expect(report.warnings).toHaveLength(1);
      expect(await lastUsed(slot)).toBe(LONG_AGO);
    },
  );

  kernelTest("otherUser", "throws CasError EACCES naming an unreadable entry (0700)", async () => {
    const { cache, slot } = await sharedCache(0o077);
    expect((await lstat(slot)).mode & 0o777).toBe(0o700);
    const report = await touchAsNobody(cache, slot);
    expect(report.results).toEqual([]);
    expect(report.error).toMatchObject({ name: "CasError", code: "EACCES", path: slot });
    expect(report.error?.message).toBe(
      `cache entry ${slot} belongs to another user and is not readable by this one; use a cache directory of your own (CAS_STAGE_CACHE_DIR), or share one with a umask that lets the others read and write (umask 002 in a common group)`,
    );
  });

  kernelTest(
    "otherUser",
    "throws CasError EACCES when the slot is readable but its sentinel is not",
    async () => {
      const { cache, slot } = await sharedCache(0o022);
      await chmod(join(slot, SENTINEL), 0o600);
      const report = await touchAsNobody(cache, slot);
      expect(report.error).toMatchObject({ name: "CasError", code: "EACCES", path: slot });
    },
  );
});
