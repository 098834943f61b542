// Race windows between two syscalls of EntryStore that no test hook reaches, held open deterministically:
// the worker process runs under strace with a delay injected into one syscall, the test waits for that
// syscall's line in the trace (a state barrier), acts inside the window, and checks the outcome. Each
// test also checks the trace, so that it fails if the window was not the one reached.
import { mkdir, readFile, rename, rm, rmdir, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { kernelTest } from "@cas-stage/test-support/kernel";
import { describe, expect } from "vitest";
import {
  CLAIM,
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
import { MKDIR, quoted, RENAME, RMDIR, startEntryWorker, waitForTrace } from "./entry-processes.js";
import { tempDir } from "./fixtures.js";

const DELAY = 400_000; // µs the worker is held inside the window: ample for the test to act

async function traced() {
  return join(await tempDir(), "trace");
}

describe("EntryStore.evict between the claim and the claim check", () => {
  kernelTest("strace", "a hit in the window misses, and the eviction goes on", async () => {
    const cache = await makeCache();
    await publishEntry(cache, "abc");
    const slot = cache.slot("abc");
    await setLastUsed(slot, LONG_AGO);
    const output = await traced();
    const worker = startEntryWorker(
      { root: cache.root, calls: [{ op: "evict", name: "abc" }] },
      { trace: RENAME, inject: [`${RENAME}:delay_exit=${DELAY}`], output },
    );
    await waitForTrace(
      output,
      new RegExp(`${quoted(join(slot, SENTINEL))}", ${quoted(join(slot, CLAIM))}"\\) = 0`),
    );
    expect(await cache.store.touch(slot)).toBe(false);
    await worker.exited;
    expect(worker.events.filter((e) => e.event !== "ready")).toEqual([
      { event: "done", op: "evict", name: "abc", evicted: true },
    ]);
    expect((await cache.store.inspect(slot)).state).toBe("absent");
    expect(await namesIn(cache.store.trashDir)).toEqual([]);
  });

  kernelTest(
    "strace",
    "a claim given back in the window (a repair) ends the eviction, the entry kept whole",
    async () => {
      const cache = await makeCache({ claimGraceMs: 0 });
      await publishEntry(cache, "abc");
      const slot = cache.slot("abc");
      await setLastUsed(slot, LONG_AGO);
      const output = await traced();
      const worker = startEntryWorker(
        { root: cache.root, calls: [{ op: "evict", name: "abc" }] },
        { trace: RENAME, inject: [`${RENAME}:delay_exit=${DELAY}`], output },
      );
      await waitForTrace(output, new RegExp(`${quoted(join(slot, CLAIM))}"\\) = 0`));
      expect(await cache.store.repairClaim(slot)).toBe(true);
      await worker.exited;
      expect(worker.events.filter((e) => e.event === "done")).toEqual([
        { event: "done", op: "evict", name: "abc", evicted: false },
      ]);
      expect(await markers(slot)).toEqual([SENTINEL]);
      expect(await treeProblem(slot, "abc")).toBe("whole");
      expect(await lastUsed(slot)).toBe(LONG_AGO);
      expect(await namesIn(cache.store.trashDir)).toEqual([]);
      // Only the claim was renamed: the evictor never moved the slot.
      expect((await readFile(output, "utf8")).match(/rename/g)).toHaveLength(1);
    },
  );

  kernelTest(
    "strace",
    "a touch that lands on the claim in the window makes the evictor give it back",
    async () => {
      const cache = await makeCache();
      await publishEntry(cache, "abc");
      const slot = cache.slot("abc");
      await setLastUsed(slot, LONG_AGO);
      const output = await traced();
      const worker = startEntryWorker(
        { root: cache.root, calls: [{ op: "evict", name: "abc" }] },
        { trace: RENAME, inject: [`${RENAME}:delay_exit=${DELAY}`], output },
      );
      await waitForTrace(output, new RegExp(`${quoted(join(slot, CLAIM))}"\\) = 0`));
      // What a hit does to the inode when its path lookup found the sentinel just before the claim.
      const now = new Date();
      await utimes(join(slot, CLAIM), now, now);
      await worker.exited;
      expect(worker.events.filter((e) => e.event === "done")).toEqual([
        { event: "done", op: "evict", name: "abc", evicted: false },
      ]);
      expect(await markers(slot)).toEqual([SENTINEL]);
      expect(await treeProblem(slot, "abc")).toBe("whole");
      const trace = await readFile(output, "utf8");
      expect(trace).toMatch(
        new RegExp(`${quoted(join(slot, CLAIM))}", ${quoted(join(slot, SENTINEL))}"\\) = 0`),
      );
    },
  );
});

describe("EntryStore.evict between the claim check and the move", () => {
  kernelTest(
    "strace",
    "a slot moved aside before the move and rebuilt before the evictor looks again is left to its builder",
    async () => {
      const cache = await makeCache();
      await publishEntry(cache, "abc");
      const slot = cache.slot("abc");
      await setLastUsed(slot, LONG_AGO);
      const output = await traced();
      const STAT = "statx,newfstatat,lstat";
      // Held after it checked its claim, and again after its move into the trash failed.
      const worker = startEntryWorker(
        { root: cache.root, calls: [{ op: "evict", name: "abc" }] },
        {
          trace: `${RENAME},${STAT}`,
          inject: [`${STAT}:delay_exit=${DELAY}`, `${RENAME}:delay_exit=${DELAY}`],
          paths: [slot, join(slot, CLAIM)],
          output,
        },
      );
      await waitForTrace(output, new RegExp(`stat.*${quoted(join(slot, CLAIM))}".*\\) = 0`));
      // A repair (which took the evictor for dead) moves the slot aside: the move will find nothing.
      const aside = join(cache.root, "moved-aside");
      await rm(aside, { recursive: true, force: true });
      await rename(slot, aside);
      await waitForTrace(output, new RegExp(`${quoted(slot)}", ${quoted(cache.store.trashDir)}.*ENOENT`));
      // A builder publishes a new entry at the path before the evictor looks at why its move failed.
      await publishEntry(cache, "abc");
      await worker.exited;
      expect(worker.events.filter((e) => e.event !== "ready")).toEqual([
        { event: "done", op: "evict", name: "abc", evicted: false },
      ]);
      expect(await markers(slot)).toEqual([SENTINEL]);
      expect(await treeProblem(slot, "abc")).toBe("whole");
      expect(await namesIn(cache.store.trashDir)).toEqual([]);
    },
  );
});

describe("EntryStore.publish: the slot appears whole", () => {
  kernelTest("strace", "has its sentinel at the very instant the rename publishes it", async () => {
    const cache = await makeCache();
    const slot = cache.slot("abc");
    const output = await traced();
    const worker = startEntryWorker(
      { root: cache.root, calls: [{ op: "publish", name: "abc" }] },
      { trace: RENAME, inject: [`${RENAME}:delay_exit=${DELAY}`], output },
    );
    // Held just after the rename that made the slot appear: nothing else of publish has run yet.
    await waitForTrace(
      output,
      new RegExp(`${quoted(cache.store.stagingDir)}/abc\\.tmp\\.[A-Za-z0-9]{6}", ${quoted(slot)}"\\) = 0`),
    );
    expect(await markers(slot)).toEqual([SENTINEL]);
    expect(await treeProblem(slot, "abc")).toBe("whole");
    await worker.exited;
    expect(worker.events.filter((e) => e.event === "done")).toMatchObject([
      { outcome: "built", check: "whole" },
    ]);
  });
});

describe("EntryStore.publish when an evictor removes the slot's parent", () => {
  kernelTest(
    "strace",
    "retries when the fan-out dir is removed between the build and the rename",
    async () => {
      const cache = await makeCache();
      const slot = cache.slot("abc");
      const output = await traced();
      const worker = startEntryWorker(
        { root: cache.root, calls: [{ op: "publish", name: "abc" }] },
        { trace: RENAME, inject: [`${RENAME}:delay_enter=${DELAY}`], output },
      );
      const staged = new RegExp(
        `${quoted(cache.store.stagingDir)}/abc\\.tmp\\.[A-Za-z0-9]{6}", ${quoted(slot)}"`,
      );
      await waitForTrace(output, staged);
      await rmdir(join(slot, ".."));
      await worker.exited;
      expect(worker.events.filter((e) => e.event !== "ready")).toEqual([
        { event: "done", op: "publish", name: "abc", outcome: "built", check: "whole" },
      ]);
      const renames = (await readFile(output, "utf8")).split("\n").filter((line) => staged.test(line));
      expect(renames).toHaveLength(2);
      expect(renames[0]).toMatch(/= -1 ENOENT/);
      expect(renames[1]).toMatch(/= 0/);
      expect(await treeProblem(slot, "abc")).toBe("whole");
      expect(await namesIn(cache.store.stagingDir)).toEqual([]);
    },
  );

  kernelTest(
    "strace",
    "retries when the fan-out dir is removed while mkdir -p is making sure it exists",
    async () => {
      // Node's recursive mkdir finds the directory existing (EEXIST), then stats it: removed in between, it
      // fails with ENOENT (issue 8, item 9).
      const cache = await makeCache();
      const slot = cache.slot("abc");
      await mkdir(join(slot, ".."));
      const output = await traced();
      const worker = startEntryWorker(
        { root: cache.root, calls: [{ op: "publish", name: "abc" }] },
        { trace: MKDIR, inject: [`${MKDIR}:delay_exit=${DELAY}`], output },
      );
      const fanOut = new RegExp(`${quoted(join(slot, ".."))}", 0777\\) = `);
      await waitForTrace(output, new RegExp(`${fanOut.source}-1 EEXIST`));
      await rmdir(join(slot, ".."));
      await worker.exited;
      expect(worker.events.filter((e) => e.event !== "ready")).toEqual([
        { event: "done", op: "publish", name: "abc", outcome: "built", check: "whole" },
      ]);
      const made = (await readFile(output, "utf8")).split("\n").filter((line) => fanOut.test(line));
      expect(made[0]).toMatch(/-1 EEXIST/);
      expect(made.at(-1)).toMatch(/= 0/);
    },
  );
});

/**
 * A cache whose slot "abc" holds debris (a directory without a sentinel), and a worker running `makeWay`
 * on it under strace, which traces rmdir and rename and applies `inject`.
 */
async function makeWayOverDebris(inject: string[]) {
  const cache = await makeCache();
  const slot = cache.slot("abc");
  await mkdir(slot, { recursive: true });
  await writeFile(join(slot, "junk"), "debris");
  const output = await traced();
  const worker = startEntryWorker(
    { root: cache.root, calls: [{ op: "makeWay", name: "abc" }] },
    { trace: `${RMDIR},${RENAME}`, inject, output },
  );
  return { cache, slot, output, worker };
}

describe("EntryStore.makeWay when debris turns into a complete entry", () => {
  kernelTest(
    "strace",
    "puts back a complete entry that replaced the debris just before the move",
    async () => {
      const { cache, slot, output, worker } = await makeWayOverDebris([`${RMDIR}:delay_enter=${DELAY}`]);
      await waitForTrace(output, new RegExp(`rmdir\\(${quoted(slot)}"`));
      await rm(slot, { recursive: true });
      expect((await publishEntry(cache, "abc")).outcome).toBe("built");
      await worker.exited;
      expect(worker.events.filter((e) => e.event !== "ready")).toEqual([
        { event: "done", op: "makeWay", name: "abc", state: "complete" },
      ]);
      const trace = await readFile(output, "utf8");
      expect(trace).toMatch(/rmdir\(.*\) = -1 ENOTEMPTY/);
      expect(trace).toMatch(new RegExp(`rename\\(${quoted(slot)}", ${quoted(cache.store.trashDir)}`));
      expect(await markers(slot)).toEqual([SENTINEL]);
      expect(await treeProblem(slot, "abc")).toBe("whole");
      expect(await namesIn(cache.store.trashDir)).toEqual([]);
    },
  );

  kernelTest(
    "strace",
    "leaves alone a complete entry published after the debris vanished from under its move",
    async () => {
      const { cache, slot, output, worker } = await makeWayOverDebris([
        `${RMDIR}:delay_exit=${DELAY}`,
        `${RENAME}:delay_exit=${DELAY}`,
      ]);
      await waitForTrace(output, new RegExp(`rmdir\\(${quoted(slot)}"\\) = -1 ENOTEMPTY`));
      // Another repair takes the debris first: the move into the trash will find nothing.
      await rm(slot, { recursive: true });
      await waitForTrace(
        output,
        new RegExp(`rename\\(${quoted(slot)}", ${quoted(cache.store.trashDir)}.*ENOENT`),
      );
      // A builder publishes before the repair looks at why its move failed.
      expect((await publishEntry(cache, "abc")).outcome).toBe("built");
      await worker.exited;
      expect(worker.events.filter((e) => e.event !== "ready")).toEqual([
        { event: "done", op: "makeWay", name: "abc", state: "complete" },
      ]);
      expect(await treeProblem(slot, "abc")).toBe("whole");
      expect(await namesIn(cache.store.trashDir)).toEqual([]);
    },
  );

  kernelTest(
    "strace",
    "removes the one it moved, with a warning, when another was published before it could put it back",
    async () => {
      const { cache, slot, output, worker } = await makeWayOverDebris([
        `${RMDIR}:delay_enter=${DELAY}`,
        `${RENAME}:delay_exit=${DELAY}`,
      ]);
      await waitForTrace(output, new RegExp(`rmdir\\(${quoted(slot)}"`));
      await rm(slot, { recursive: true });
      expect((await publishEntry(cache, "abc")).outcome).toBe("built");
      await waitForTrace(
        output,
        new RegExp(`rename\\(${quoted(slot)}", ${quoted(cache.store.trashDir)}.*= 0`),
      );
      expect((await publishEntry(cache, "abc")).outcome).toBe("built");
      await worker.exited;
      expect(worker.events.filter((e) => e.event !== "ready")).toEqual([
        { event: "warning", message: "removed an entry that was published twice", path: slot },
        { event: "done", op: "makeWay", name: "abc", state: "complete" },
      ]);
      expect(await treeProblem(slot, "abc")).toBe("whole");
      expect(await namesIn(cache.store.trashDir)).toEqual([]);
    },
  );
});
