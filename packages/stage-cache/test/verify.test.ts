// StageCache.verify: every entry checked against the manifest its copy recorded; --fix moves bad ones aside
// through the eviction path, and an entry replaced while it was checked is never judged.
import { appendFileSync, existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { EntryStore } from "@cas-stage/cas";
import { describe, expect, it } from "vitest";
import { STAGE_COMPLETE_SENTINEL, StageCache } from "../src/index.js";
import { Layout } from "../src/layout.js";
import { verifyEntries } from "../src/verify.js";
import { tempDir, writeTree } from "./fixtures.js";

const TREE = { "a.txt": "alpha", "b/c.txt": "charlie", "b/d/e.bin": Buffer.alloc(70_000, 9) };

async function cacheWith(...fingerprints: string[]) {
  const source = writeTree(tempDir("src"), TREE);
  const root = join(tempDir("root"), "cache");
  const cache = await StageCache.open({ root });
  const slots: Record<string, string> = {};
  for (const fingerprint of fingerprints) slots[fingerprint] = await cache.stage(source, fingerprint);
  return { source, root, cache, slots };
}

function storeOf(layout: Layout): EntryStore {
  return layout.entryStore();
}

describe("StageCache.verify", () => {
  it("finds whole entries ok and reports a modified one with its first differing path", async () => {
    const { cache, slots } = await cacheWith("good", "bad");
    appendFileSync(join(slots.bad as string, "b/c.txt"), "!");
    const result = await cache.verify();
    await cache.close();
    expect(result.bad).toBe(1);
    expect(result.fixed).toBe(0);
    expect(result.checkedBytes).toBe(2 * (5 + 7 + 70_000));
    const byFingerprint = Object.fromEntries(result.entries.map((entry) => [entry.fingerprint, entry]));
    expect(byFingerprint.good).toMatchObject({ status: "ok", path: slots.good });
    expect(byFingerprint.good?.difference).toBeUndefined();
    expect(byFingerprint.bad).toMatchObject({
      status: "bad",
      difference: { path: "b/c.txt", problem: "size", expected: "7 bytes", found: "8 bytes" },
    });
    // Reads only: the bad entry is still there, complete.
    expect(existsSync(join(slots.bad as string, STAGE_COMPLETE_SENTINEL))).toBe(true);
  });

  it("with fix, moves a bad entry aside in one rename, so that the next stage copies it again", async () => {
    const { source, cache, slots } = await cacheWith("bad");
    const slot = slots.bad as string;
    writeFileSync(join(slot, "a.txt"), "ALPHA");
    const result = await cache.verify({ fix: true });
    expect(result).toMatchObject({ bad: 1, fixed: 1 });
    expect(result.entries[0]).toMatchObject({
      status: "bad",
      fixed: true,
      difference: { problem: "content" },
    });
    expect(existsSync(slot)).toBe(false);
    // The same cache object does not return its memoized path: it copies again, whole.
    let copied = 0;
    expect(await cache.stage(source, "bad", { onProgress: () => copied++ })).toBe(slot);
    expect(copied).toBe(3);
    expect(readFileSync(join(slot, "a.txt"), "utf8")).toBe("alpha");
    expect((await cache.verify()).bad).toBe(0);
    await cache.close();
  });

  it("reports an entry whose sentinel records no manifest, and fix moves it aside", async () => {
    const { cache, slots } = await cacheWith("old");
    writeFileSync(
      join(slots.old as string, STAGE_COMPLETE_SENTINEL),
      '{"version":1,"files":3,"bytes":70012}\n',
    );
    const result = await cache.verify({ fix: true });
    await cache.close();
    expect(result.entries[0]).toMatchObject({
      status: "bad",
      fixed: true,
      difference: { path: STAGE_COMPLETE_SENTINEL, problem: "manifest" },
    });
  });

  it("never judges, nor moves, an entry that was replaced while it was checked", async () => {
    const { source, root, cache, slots } = await cacheWith("replaced");
    const slot = slots.replaced as string;
    appendFileSync(join(slot, "a.txt"), "!");
    const layout = new Layout(root);
    const result = await verifyEntries(
      layout,
      storeOf(layout),
      { fix: true },
      {
        // An eviction takes the bad entry and another process stages it again, whole.
        afterCheck: async () => {
          renameSync(slot, join(layout.trashDir, "replaced.gone"));
          const other = await StageCache.open({ root });
          await other.stage(source, "replaced");
          await other.close();
        },
      },
    );
    await cache.close();
    expect(result).toMatchObject({ bad: 0, fixed: 0 });
    expect(result.entries[0]).toMatchObject({ status: "gone" });
    expect(readFileSync(join(slot, "a.txt"), "utf8")).toBe("alpha");
  });

  it("reports an entry evicted before it was read as gone", async () => {
    const { root, cache, slots } = await cacheWith("first", "second");
    await cache.close();
    const layout = new Layout(root);
    const store = storeOf(layout);
    const result = await verifyEntries(
      layout,
      store,
      {},
      {
        afterCheck: async (checked) => {
          const other = checked === slots.first ? slots.second : slots.first;
          await store.evict(other as string, 0, { force: true });
        },
      },
    );
    expect(result.entries.map((entry) => entry.status).sort()).toEqual(["gone", "ok"]);
    expect(result.bad).toBe(0);
  });

  it("stops when aborted, with the signal's reason, changing nothing", async () => {
    const { cache, slots } = await cacheWith("one", "two");
    appendFileSync(join(slots.one as string, "a.txt"), "!");
    const reason = new Error("stop");
    await expect(cache.verify({ fix: true, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    await cache.close();
    expect(existsSync(join(slots.one as string, STAGE_COMPLETE_SENTINEL))).toBe(true);
    expect(readdirSync(join(cache.root, ".trash"))).toEqual([]);
  });
});
