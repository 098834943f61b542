// EntryStore.touch on another user's entry in a shared cache: the hitting process runs as the unprivileged
// user nobody against entries that a root process published under the umask a shared cache would use.
import { execFile } from "node:child_process";
import { chmod, chown, lstat, mkdir, readFile, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { kernelTest, nobody } from "@cas-stage/test-support/kernel";
import { forChild } from "@cas-stage/test-support/mutation";
import { runnableByOthers } from "@cas-stage/test-support/other-users";
import { describe, expect } from "vitest";
import {
  CLAIM,
  LONG_AGO,
  lastUsed,
  makeCache,
  SENTINEL,
  sentinelContent,
  setLastUsed,
  type TestCache,
} from "./entries.js";
import { startEntryWorker } from "./entry-processes.js";
import { tempDir } from "./fixtures.js";

const TOUCH_WORKER = join(import.meta.dirname, "workers", "touch-worker.mjs");
const run = promisify(execFile);

interface TouchReport {
  results: boolean[];
  leakedFds?: number;
  warnings: Array<{ message: string; path: string }>;
  error?: { name: string; code: string; path: string; message: string };
}

/** Touches `slot` three times from a process running as nobody (a copy of the worker nobody can reach). */
async function touchAsNobody(cache: TestCache, slot: string): Promise<TouchReport> {
  const config = { root: cache.root, slot, sentinel: SENTINEL, claim: CLAIM, times: 3 };
  const bridge = forChild();
  try {
    const { stdout } = await run(process.execPath, [runnableByOthers(TOUCH_WORKER), JSON.stringify(config)], {
      ...nobody,
      env: bridge.env,
    });
    return JSON.parse(stdout) as TouchReport;
  } finally {
    bridge.collect();
  }
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
  // Published by another root process running under `mask`, as the cache's owner would.
  const publisher = startEntryWorker({ root, umask: mask, calls: [{ op: "publish", name: "abc" }] });
  await publisher.exited;
  expect(publisher.events.filter((e) => e.event === "done")).toMatchObject([
    { outcome: "built", check: "whole" },
  ]);
  const slot = cache.slot("abc");
  await setLastUsed(slot, LONG_AGO);
  return { cache, slot };
}

describe("EntryStore.touch on another user's entry", () => {
  kernelTest("otherUser", "marks a world-writable entry (umask 000) used by rewriting a byte", async () => {
    const { cache, slot } = await sharedCache(0o000);
    const report = await touchAsNobody(cache, slot);
    expect(report).toEqual({ results: [true, true, true], warnings: [], leakedFds: 0 });
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
      expect(report).toEqual({ results: [true, true, true], warnings: [], leakedFds: 0 });
      expect(await lastUsed(slot)).toBeGreaterThan(LONG_AGO);
      expect(await readFile(join(slot, SENTINEL), "utf8")).toBe(sentinelContent("abc"));
    },
  );

  kernelTest("otherUser", "takes a read-only entry (umask 022) as a hit, with one warning", async () => {
    const { cache, slot } = await sharedCache(0o022);
    const report = await touchAsNobody(cache, slot);
    expect(report).toEqual({
      results: [true, true, true],
      leakedFds: 0,
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
      expect(report.results).toEqual([true, true, true]);
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
