// EntryStore.publish: hit, build or adopt, whatever occupies the slot, on real files. Windows between two
// syscalls that no hook reaches (a fan-out removed just before the rename) are in entry-windows.test.ts.
import { lstat, mkdir, readdir, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { kernelTest, mountTmpfs, unmount } from "@cas-stage/test-support/kernel";
import { afterEach, describe, expect, it } from "vitest";
import { CasError, StageError } from "../src/index.js";
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
  sentinelContent,
  setLastUsed,
  type TestCache,
  treeProblem,
  writeEntryTree,
} from "./entries.js";

const undo: Array<() => void> = [];
afterEach(() => {
  for (const step of undo.splice(0).reverse()) step();
});

/** Nothing left behind: no temp in the staging dir, nothing in the trash. */
async function expectNoDebris(cache: TestCache): Promise<void> {
  expect(await namesIn(cache.store.stagingDir)).toEqual([]);
  expect(await namesIn(cache.store.trashDir)).toEqual([]);
}

/** A build that counts its calls and writes entry `name`. */
function countingBuild(name: string) {
  const build = async (staging: string) => {
    build.calls++;
    return writeEntryTree(staging, name);
  };
  build.calls = 0;
  return build;
}

describe("EntryStore.publish builds a missing entry", () => {
  it("builds it in the staging dir and publishes it whole with its sentinel: outcome built", async () => {
    const cache = await makeCache();
    const slot = cache.slot("abc");
    const controller = new AbortController();
    let seen: { staging: string; empty: string[]; signal: AbortSignal | undefined } | undefined;
    const result = await cache.store.publish(slot, {
      signal: controller.signal,
      build: async (staging, ctx) => {
        seen = { staging, empty: await readdir(staging), signal: ctx.signal };
        return writeEntryTree(staging, "abc");
      },
    });
    expect(result).toEqual({ path: slot, outcome: "built" });
    expect(seen?.staging.startsWith(join(cache.store.stagingDir, "abc.tmp."))).toBe(true);
    expect(seen?.empty).toEqual([]);
    expect(seen?.signal).toBe(controller.signal);
    expect(await treeProblem(slot, "abc")).toBe("whole");
    expect(await markers(slot)).toEqual([SENTINEL]);
    expect(await readFile(join(slot, SENTINEL), "utf8")).toBe(sentinelContent("abc"));
    await expectNoDebris(cache);
    expect(cache.warnings).toEqual([]);
  });

  it("writes the sentinel itself, after build returns, from what build returned (a string or a Buffer)", async () => {
    const cache = await makeCache();
    let sentinelDuringBuild: boolean | undefined;
    await cache.store.publish(cache.slot("abc"), {
      build: async (staging) => {
        await writeEntryTree(staging, "abc");
        sentinelDuringBuild = (await namesIn(staging)).includes(SENTINEL);
        return Buffer.from([0, 1, 2, 255]);
      },
    });
    expect(sentinelDuringBuild).toBe(false);
    expect(await readFile(join(cache.slot("abc"), SENTINEL))).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  it("fails with EEXIST and leaves nothing when build wrote a file named like the sentinel", async () => {
    const cache = await makeCache();
    const error = await cache.store
      .publish(cache.slot("abc"), {
        build: async (staging) => {
          await writeFile(join(staging, SENTINEL), "forged");
          return "real";
        },
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "EEXIST" });
    expect((await cache.store.inspect(cache.slot("abc"))).state).toBe("absent");
    await expectNoDebris(cache);
  });

  it("keeps the sentinel and the claim where the caller put them, in a subdirectory of the slot", async () => {
    const cache = await makeCache({ sentinel: "meta/complete", claim: "meta/claimed" });
    const slot = cache.slot("abc");
    expect((await publishEntry(cache, "abc")).outcome).toBe("built");
    expect(await readFile(join(slot, "meta", "complete"), "utf8")).toBe(sentinelContent("abc"));
    const listed = await setLastUsed(slot, LONG_AGO, "meta/complete");
    const held = gate();
    const evictor = (
      await makeCache({
        root: cache.root,
        sentinel: "meta/complete",
        claim: "meta/claimed",
        hooks: { beforeTrash: held.hook },
      })
    ).store;
    const evicting = evictor.evict(slot, listed);
    await held.reached;
    expect(await namesIn(join(slot, "meta"))).toEqual(["claimed"]);
    held.release();
    expect(await evicting).toBe(true);
  });

  it("makes the slot's missing parent directories", async () => {
    const cache = await makeCache();
    const slot = join(cache.root, "a", "b", "c", "abc");
    expect((await cache.store.publish(slot, { build: (s) => writeEntryTree(s, "abc") })).outcome).toBe(
      "built",
    );
    expect(await treeProblem(slot, "abc")).toBe("whole");
  });

  it("passes tmpPrefix and fails at once, with StageError phase tmp, when the staging dir is missing", async () => {
    const cache = await makeCache();
    await rm(cache.store.stagingDir, { recursive: true });
    const build = countingBuild("abc");
    const error = (await cache.store
      .publish(cache.slot("abc"), { build, tmpPrefix: "cannot make a temp dir" })
      .catch((e: unknown) => e)) as StageError;
    expect(error).toBeInstanceOf(StageError);
    expect(error.phase).toBe("tmp");
    expect(error.code).toBe("ENOENT");
    expect(error.message).toMatch(/^cannot make a temp dir: ENOENT/);
    expect(build.calls).toBe(0);
  });

  it("fails at once with EEXIST when a dangling symlink stands where the slot's parent should be", async () => {
    const cache = await makeCache();
    await symlink(join(cache.root, "nowhere"), join(cache.root, "ab"));
    const error = await publishEntry(cache, "abc").catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "EEXIST", syscall: "mkdir" });
    await expectNoDebris(cache);
  });

  it("publishes the same tree with durable: true", async () => {
    const cache = await makeCache();
    const result = await cache.store.publish(cache.slot("abc"), {
      durable: true,
      build: (s) => writeEntryTree(s, "abc"),
    });
    expect(result.outcome).toBe("built");
    expect(await treeProblem(cache.slot("abc"), "abc")).toBe("whole");
  });
});

describe("EntryStore.publish finds a complete entry", () => {
  it("returns it as a hit, marked used, without building", async () => {
    const cache = await makeCache();
    await publishEntry(cache, "abc");
    const slot = cache.slot("abc");
    await setLastUsed(slot, LONG_AGO);
    const build = countingBuild("abc");
    expect(await cache.store.publish(slot, { build })).toEqual({ path: slot, outcome: "hit" });
    expect(build.calls).toBe(0);
    expect(await lastUsed(slot)).toBeGreaterThan(LONG_AGO);
  });

  it("adopts the entry a concurrent publisher finished first: one build published, the other thrown away", async () => {
    const cache = await makeCache();
    const peer = await makeCache({ root: cache.root });
    const slot = cache.slot("abc");
    const ours = gate();
    const theirs = gate();
    const build = (held: ReturnType<typeof gate>) => async (staging: string) => {
      await writeEntryTree(staging, "abc");
      await held.hook();
      return sentinelContent("abc");
    };
    const first = peer.store.publish(slot, { build: build(theirs) });
    const second = cache.store.publish(slot, { build: build(ours) });
    await Promise.all([ours.reached, theirs.reached]);
    theirs.release();
    expect(await first).toEqual({ path: slot, outcome: "built" });
    ours.release();
    expect(await second).toEqual({ path: slot, outcome: "adopted" });
    expect(await treeProblem(slot, "abc")).toBe("whole");
    await expectNoDebris(cache);
    expect([...cache.warnings, ...peer.warnings]).toEqual([]);
  });
});

describe("EntryStore.publish with something else in the slot", () => {
  it("moves an incomplete directory aside, with a warning, and builds", async () => {
    const cache = await makeCache();
    const slot = cache.slot("abc");
    await mkdir(join(slot, "d"), { recursive: true });
    await writeFile(join(slot, "d", "f0"), "half");
    expect((await publishEntry(cache, "abc")).outcome).toBe("built");
    expect(await treeProblem(slot, "abc")).toBe("whole");
    expect(cache.warnings).toEqual([
      { message: "removed an incomplete entry left by another writer", path: slot },
    ]);
    await expectNoDebris(cache);
  });

  it("replaces an empty directory quietly", async () => {
    const cache = await makeCache();
    const slot = cache.slot("abc");
    await mkdir(slot, { recursive: true });
    expect((await publishEntry(cache, "abc")).outcome).toBe("built");
    expect(await treeProblem(slot, "abc")).toBe("whole");
    expect(cache.warnings).toEqual([]);
  });

  it("replaces a file in the slot's place, with a warning", async () => {
    const cache = await makeCache();
    const slot = cache.slot("abc");
    await mkdir(join(slot, ".."), { recursive: true });
    await writeFile(slot, "not a directory");
    expect((await publishEntry(cache, "abc")).outcome).toBe("built");
    expect(await treeProblem(slot, "abc")).toBe("whole");
    expect(cache.warnings).toHaveLength(1);
  });

  it("waits while an evictor holds the entry (a young claim), then builds it again once it is gone", async () => {
    const cache = await makeCache();
    await publishEntry(cache, "abc");
    const slot = cache.slot("abc");
    const listed = await setLastUsed(slot, LONG_AGO);
    const held = gate();
    const evictor = (await makeCache({ root: cache.root, hooks: { beforeTrash: held.hook } })).store;
    const evicting = evictor.evict(slot, listed);
    await held.reached;
    const build = countingBuild("abc");
    let settled = false;
    const publishing = cache.store.publish(slot, { build }).finally(() => {
      settled = true;
    });
    // A state barrier, not a sleep: the first build ran and its rename lost to the claimed slot (its temp
    // dir is gone again), so the publisher is now waiting on the claim; a few polls later it must still be.
    while (build.calls === 0 || (await namesIn(join(cache.root, ".staging"))).length > 0) await sleep(5);
    await sleep(30);
    expect(settled).toBe(false);
    expect(await markers(slot)).toEqual([CLAIM]);
    held.release();
    expect(await evicting).toBe(true);
    expect(await publishing).toEqual({ path: slot, outcome: "built" });
    expect(build.calls).toBe(2);
    expect(await treeProblem(slot, "abc")).toBe("whole");
    expect(cache.warnings).toEqual([]);
    await expectNoDebris(cache);
  });

  it("gives back an entry whose evictor died (an old claim), with a warning, and returns it", async () => {
    const cache = await makeCache({ claimGraceMs: 0 });
    await publishEntry(cache, "abc");
    const slot = cache.slot("abc");
    await setLastUsed(slot, LONG_AGO);
    await rename(join(slot, SENTINEL), join(slot, CLAIM));
    const build = countingBuild("abc");
    expect(await cache.store.publish(slot, { build })).toEqual({ path: slot, outcome: "hit" });
    expect(build.calls).toBe(1);
    expect(await markers(slot)).toEqual([SENTINEL]);
    expect(await lastUsed(slot)).toBeGreaterThan(LONG_AGO);
    expect(cache.warnings).toEqual([
      { message: "gave back an entry whose eviction was interrupted", path: slot },
    ]);
    await expectNoDebris(cache);
  });

  it("builds again when the entry it published was evicted before it could confirm it", async () => {
    const cache = await makeCache();
    let evictions = 0;
    const store = (
      await makeCache({
        root: cache.root,
        hooks: {
          afterTouch: async (s) => {
            if (evictions++ === 0) expect(await cache.store.evict(s, 0, { force: true })).toBe(true);
          },
        },
      })
    ).store;
    const build = countingBuild("abc");
    const slot = cache.slot("abc");
    expect(await store.publish(slot, { build })).toEqual({ path: slot, outcome: "built" });
    expect(build.calls).toBe(2);
    expect(await treeProblem(slot, "abc")).toBe("whole");
  });

  it("gives up with CasError EAGAIN after eight builds that were all evicted at once, leaving nothing", async () => {
    const cache = await makeCache();
    const store = (
      await makeCache({
        root: cache.root,
        hooks: { afterTouch: (s) => cache.store.evict(s, 0, { force: true }) },
      })
    ).store;
    const build = countingBuild("abc");
    const slot = cache.slot("abc");
    const error = (await store.publish(slot, { build }).catch((e: unknown) => e)) as CasError;
    expect(error).toBeInstanceOf(CasError);
    expect(error.code).toBe("EAGAIN");
    expect(error.path).toBe(slot);
    expect(error.message).toBe(`cannot publish ${slot}, it was evicted again after every build`);
    expect(error.cause).toBeUndefined();
    expect(build.calls).toBe(8);
    expect((await cache.store.inspect(slot)).state).toBe("absent");
    await expectNoDebris(cache);
  });

  kernelTest(
    "mountTmpfs",
    "fails at once, without building again, when the filesystem refuses the publication (a slot on another filesystem: EXDEV)",
    async () => {
      const cache = await makeCache();
      const fanOut = join(cache.slot("abc"), "..");
      await mkdir(fanOut);
      mountTmpfs(fanOut, "1m");
      undo.push(() => unmount(fanOut));
      const build = countingBuild("abc");
      const slot = cache.slot("abc");
      const error = (await cache.store.publish(slot, { build }).catch((e: unknown) => e)) as StageError;
      expect(error).toBeInstanceOf(StageError);
      expect(error.phase).toBe("finalize");
      expect(error.code).toBe("EXDEV");
      expect(error.path).toBe(slot);
      expect(error.message).toMatch(/^stage finalize: EXDEV/);
      expect(build.calls).toBe(1);
      expect(await namesIn(fanOut)).toEqual([]);
      await expectNoDebris(cache);
    },
  );
});

describe("EntryStore.publish leaves nothing behind on failure", () => {
  it("rethrows the very error build throws, asynchronously or synchronously", async () => {
    const cache = await makeCache();
    const slot = cache.slot("abc");
    const thrown = new Error("build failed");
    const rejected = await cache.store
      .publish(slot, {
        build: async (staging) => {
          await writeEntryTree(staging, "abc");
          throw thrown;
        },
      })
      .catch((e: unknown) => e);
    expect(rejected).toBe(thrown);
    const sync = await cache.store
      .publish(slot, {
        build: () => {
          throw thrown;
        },
      })
      .catch((e: unknown) => e);
    expect(sync).toBe(thrown);
    expect((await cache.store.inspect(slot)).state).toBe("absent");
    await expectNoDebris(cache);
  });

  it("rejects with the abort reason when aborted during build, publishing nothing", async () => {
    const cache = await makeCache();
    const slot = cache.slot("abc");
    const controller = new AbortController();
    const reason = new Error("cancelled");
    const error = await cache.store
      .publish(slot, {
        signal: controller.signal,
        build: async (staging) => {
          await writeEntryTree(staging, "abc");
          controller.abort(reason);
          return "ignored the signal";
        },
      })
      .catch((e: unknown) => e);
    expect(error).toBe(reason);
    expect((await cache.store.inspect(slot)).state).toBe("absent");
    // Already at the rejection: no temp dir, and not even the slot's fan-out directory.
    expect(await namesIn(cache.root)).toEqual([".staging", ".trash"]);
    await expectNoDebris(cache);
  });

  it("rejects at once, building nothing, when the signal is already aborted", async () => {
    const cache = await makeCache();
    const build = countingBuild("abc");
    const controller = new AbortController();
    controller.abort();
    const error = await cache.store
      .publish(cache.slot("abc"), { build, signal: controller.signal })
      .catch((e: unknown) => e);
    expect((error as Error).name).toBe("AbortError");
    expect(build.calls).toBe(0);
    await expectNoDebris(cache);
  });

  it("still returns a hit when the signal is already aborted: nothing is left to cancel", async () => {
    const cache = await makeCache();
    await publishEntry(cache, "abc");
    const controller = new AbortController();
    controller.abort();
    const result = await cache.store.publish(cache.slot("abc"), {
      build: countingBuild("abc"),
      signal: controller.signal,
    });
    expect(result.outcome).toBe("hit");
  });

  it("rejects with the abort reason while waiting for an eviction in progress", async () => {
    const cache = await makeCache({ claimGraceMs: 60_000 });
    await publishEntry(cache, "abc");
    const slot = cache.slot("abc");
    await rename(join(slot, SENTINEL), join(slot, CLAIM));
    const controller = new AbortController();
    const reason = new Error("cancelled");
    const built = gate();
    const publishing = cache.store.publish(slot, {
      signal: controller.signal,
      build: async (staging) => {
        const content = await writeEntryTree(staging, "abc");
        void built.hook();
        return content;
      },
    });
    await built.reached;
    await sleep(30); // the rename fails on the claimed slot and publish waits for the claim to resolve
    controller.abort(reason);
    await expect(publishing).rejects.toBe(reason);
    expect(await markers(slot)).toEqual([CLAIM]);
    await expectNoDebris(cache);
  });
});

describe("EntryStore.publish under a slot whose parent is not a directory", () => {
  it("fails with the filesystem error naming the parent and leaves nothing", async () => {
    const cache = await makeCache();
    await writeFile(join(cache.root, "ab"), "a file where the fan-out goes");
    const error = await publishEntry(cache, "abc").catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "EEXIST", path: join(cache.root, "ab") });
    expect((await lstat(join(cache.root, "ab"))).isFile()).toBe(true);
    await expectNoDebris(cache);
  });
});
