import {
  existsSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  utimesSync,
  watch,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { TEST_HOOKS, type TestHooks } from "../src/cache.js";
import {
  STAGE_COMPLETE_SENTINEL,
  StageCache,
  StageCacheError,
  type StageCacheOptions,
} from "../src/index.js";
import { Layout } from "../src/layout.js";
import { Rng, readTree, sampleTree, seedFromEnv, tempDir, until, writeTree } from "./fixtures.js";

const SEED = seedFromEnv();

async function openCache(options: Parameters<typeof StageCache.open>[0] = {}) {
  return StageCache.open({ root: join(tempDir("root"), "cache"), ...options });
}

describe("StageCache.stage with a fingerprint", () => {
  it("copies the tree to <root>/<fp[0:2]>/<fp>/ and marks it complete with the sentinel", async () => {
    const source = sampleTree(tempDir("src"));
    const cache = await openCache();
    const path = await cache.stage(source, "abc123");
    expect(path).toBe(join(cache.root, "ab", "abc123"));
    expect(existsSync(join(path, STAGE_COMPLETE_SENTINEL))).toBe(true);
    expect(readTree(path, { withModes: true, skipSentinel: true })).toEqual(
      readTree(source, { withModes: true }),
    );
    const [header] = readFileSync(join(path, STAGE_COMPLETE_SENTINEL), "utf8").split("\n");
    expect(JSON.parse(header as string)).toMatchObject({
      version: 2,
      files: 6,
      bytes:
        200_000 +
        "# sample x\n".length +
        "SECRET=x\n".length +
        "#!/bin/sh\necho x\n".length +
        "deep x".length,
    });
    await cache.close();
  });

  it("returns a hit without copying and touches the entry's sentinel, its last-use clock", async () => {
    const source = sampleTree(tempDir("src"));
    const first = await openCache();
    const path = await first.stage(source, "fp-1");
    // A stamp inside the entry proves the second call reused it instead of rebuilding.
    writeFileSync(join(path, "stamp"), "kept");
    const sentinel = join(path, STAGE_COMPLETE_SENTINEL);
    const old = new Date(Date.now() - 3_600_000);
    utimesSync(sentinel, old, old);
    const second = await StageCache.open({ root: first.root });
    expect(await second.stage(tempDir("other-source"), "fp-1")).toBe(path);
    expect(readFileSync(join(path, "stamp"), "utf8")).toBe("kept");
    expect(Date.now() - (await import("node:fs")).statSync(sentinel).mtimeMs).toBeLessThan(3_000_000);
    await first.close();
    await second.close();
  });

  it("answers repeated calls for a resolved fingerprint from memory", async () => {
    const source = sampleTree(tempDir("src"));
    const cache = await openCache({ minAgeMs: 60_000 });
    const path = await cache.stage(source, "memo");
    // Even a source that no longer exists is not looked at again.
    expect(await cache.stage(join(source, "missing"), "memo")).toBe(path);
    await cache.close();
  });

  it("touches a memoized entry again only once per touch interval", async () => {
    const source = sampleTree(tempDir("src"));
    const hooks: TestHooks = { touchIntervalMs: 3_600_000 };
    const cache = await StageCache.open({
      root: join(tempDir("root"), "cache"),
      [TEST_HOOKS]: hooks,
    } as StageCacheOptions);
    const path = await cache.stage(source, "memo");
    const sentinel = join(path, STAGE_COMPLETE_SENTINEL);
    const old = new Date(Date.now() - 7_200_000);
    utimesSync(sentinel, old, old);
    expect(await cache.stage(source, "memo")).toBe(path);
    expect(Math.abs(statSync(sentinel).mtimeMs - old.getTime())).toBeLessThan(1);
    await cache.close();
  });

  it("builds once for concurrent calls in one process", async () => {
    const source = sampleTree(tempDir("src"));
    const cache = await openCache();
    let copies = 0;
    const results = await Promise.all(
      Array.from({ length: 10 }, () => cache.stage(source, "single", { onProgress: () => copies++ })),
    );
    expect(new Set(results).size).toBe(1);
    // onProgress fires once per file of the one copy: 6 files.
    expect(copies).toBe(6);
    await cache.close();
  });

  it("rejects fingerprints outside the rule with a TypeError that states it", async () => {
    const cache = await openCache();
    const source = sampleTree(tempDir("src"));
    for (const bad of ["", "../x", "a/b", "sha256:abc", ".hidden", "-x", "x".repeat(129), "a b"]) {
      await expect(cache.stage(source, bad)).rejects.toThrow(TypeError);
      await expect(cache.stage(source, bad)).rejects.toThrow(/\^\[A-Za-z0-9\]\[A-Za-z0-9._-\]\{0,127\}\$/);
    }
    expect(await cache.stage(source, "x".repeat(128))).toContain("x".repeat(128));
    await cache.close();
  });

  it("keeps a fingerprint shaped like a temp name apart from temps", async () => {
    const source = sampleTree(tempDir("src"));
    const cache = await openCache({ staleAfterMs: 0 });
    const path = await cache.stage(source, "ab.tmp.ABCDEF");
    await cache.close();
    // open() sweeps temps older than staleAfterMs (0): the slot must survive, being no temp.
    const again = await StageCache.open({ root: cache.root, staleAfterMs: 0 });
    expect(existsSync(join(path, STAGE_COMPLETE_SENTINEL))).toBe(true);
    await again.close();
  });

  it("adopts a peer's entry only when its sentinel is present", async () => {
    const source = sampleTree(tempDir("src"));
    const cache = await openCache();
    // A peer's complete entry, published while we were "copying": adopted as is.
    const complete = join(cache.root, "pe", "peer");
    writeTree(complete, { "from-peer": "yes", [STAGE_COMPLETE_SENTINEL]: '{"bytes":3}' });
    expect(await cache.stage(source, "peer")).toBe(complete);
    expect(readFileSync(join(complete, "from-peer"), "utf8")).toBe("yes");
    expect(existsSync(join(complete, "README.md"))).toBe(false);
    await cache.close();
  });

  it("replaces a slot without a sentinel (foreign debris) by moving it aside, with a warning", async () => {
    const source = sampleTree(tempDir("src"));
    const warnings: string[] = [];
    const cache = await openCache({ onWarning: (message) => warnings.push(message) });
    const slot = join(cache.root, "de", "debris");
    writeTree(slot, { "half-written": "x" });
    const path = await cache.stage(source, "debris");
    expect(path).toBe(slot);
    expect(existsSync(join(slot, "half-written"))).toBe(false);
    expect(readTree(slot, { skipSentinel: true })).toEqual(readTree(source));
    expect(warnings).toEqual(["removed an incomplete entry left by another writer"]);
    await cache.close();
  });

  it("rebuilds an entry that another process evicted after it was memoized", async () => {
    const source = sampleTree(tempDir("src"));
    const cache = await openCache({ minAgeMs: 0 });
    const path = await cache.stage(source, "gone");
    (await import("node:fs")).rmSync(join(cache.root, "go"), { recursive: true });
    expect(await cache.stage(source, "gone")).toBe(path);
    expect(readTree(path, { skipSentinel: true })).toEqual(readTree(source));
    await cache.close();
  });
});

describe("StageCache.stage without a fingerprint", () => {
  it("makes one scratch copy per source real path, removed by close()", async () => {
    const source = sampleTree(tempDir("src"));
    const cache = await openCache();
    const a = await cache.stage(source);
    const b = await cache.stage(join(source, "src", ".."));
    expect(a).toBe(b);
    expect(a.startsWith(join(cache.root, ".scratch"))).toBe(true);
    expect(readTree(a)).toEqual(readTree(source));
    await cache.close();
    expect(existsSync(a)).toBe(false);
    await expect(cache.stage(source)).rejects.toMatchObject({ code: "ECLOSED" });
  });

  it("gives separate cache objects separate scratch copies", async () => {
    const source = sampleTree(tempDir("src"));
    const one = await openCache();
    const two = await StageCache.open({ root: one.root });
    expect(await one.stage(source)).not.toBe(await two.stage(source));
    await one.close();
    await two.close();
  });
});

describe("StageCache.open", () => {
  it("sweeps stage temps and scratch copies older than staleAfterMs, and abandoned trash", async () => {
    const root = join(tempDir("root"), "cache");
    const old = new Date(Date.now() - 2 * 86_400_000);
    const temp = join(root, ".staging", "abc.tmp.AbC123");
    const freshTemp = join(root, ".staging", "abd.tmp.AbC123");
    const scratch = join(root, ".scratch", "s-AbC123");
    const trash = join(root, ".trash", `abc.${(Date.now() - 120_000).toString(36)}.0123456789ab`);
    const freshTrash = join(root, ".trash", `abc.${Date.now().toString(36)}.0123456789ab`);
    for (const dir of [temp, freshTemp, scratch, trash, freshTrash]) writeTree(dir, { f: "x" });
    utimesSync(temp, old, old);
    utimesSync(scratch, old, old);
    const cache = await StageCache.open({ root });
    expect(existsSync(temp)).toBe(false);
    expect(existsSync(scratch)).toBe(false);
    expect(existsSync(trash)).toBe(false);
    expect(existsSync(freshTemp)).toBe(true);
    // Young trash may still be restored by the evictor that made it.
    expect(existsSync(freshTrash)).toBe(true);
    await cache.close();
  });

  it("removes all debris, young trash included, with staleAfterMs: 0", async () => {
    const root = join(tempDir("root"), "cache");
    const freshTemp = join(root, ".staging", "abd.tmp.AbC123");
    const freshTrash = join(root, ".trash", `abc.${Date.now().toString(36)}.0123456789ab`);
    for (const dir of [freshTemp, freshTrash]) writeTree(dir, { f: "x" });
    const cache = await StageCache.open({ root, staleAfterMs: 0 });
    expect(readdirSync(join(root, ".staging"))).toEqual([]);
    expect(readdirSync(join(root, ".trash"))).toEqual([]);
    await cache.close();
  });

  it("fails with a code when the root cannot be created", async () => {
    const file = join(tempDir("root"), "a-file");
    writeFileSync(file, "");
    const error = await StageCache.open({ root: join(file, "cache") }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StageCacheError);
    expect(error).toMatchObject({ code: "ENOTDIR" });
    expect((error as Error).message).toMatch(/cannot write to cache root .*CAS_STAGE_CACHE_DIR/);
  });

  it("rejects negative options with a RangeError", async () => {
    await expect(openCache({ maxBytes: -1 })).rejects.toThrow(RangeError);
  });
});

describe("bad input", () => {
  it("fails for a missing source with ENOENT and leaves no entry", async () => {
    const cache = await openCache();
    const error = await cache.stage(join(tempDir("src"), "missing"), "missing").catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "ENOENT", name: "StageCacheError" });
    expect((error as Error).message).toMatch(/source directory does not exist/);
    expect(existsSync(join(cache.root, "mi"))).toBe(false);
    expect(readdirSync(join(cache.root, ".staging"))).toEqual([]);
    await cache.close();
  });

  it("fails for a source that is a file with ENOTDIR and leaves no entry", async () => {
    const cache = await openCache();
    const file = join(tempDir("src"), "file");
    writeFileSync(file, "x");
    await expect(cache.stage(file, "file")).rejects.toMatchObject({ code: "ENOTDIR" });
    await expect(cache.stage(file)).rejects.toMatchObject({ code: "ENOTDIR" });
    expect(existsSync(join(cache.root, "fi"))).toBe(false);
    expect(readdirSync(join(cache.root, ".scratch"))).toEqual([]);
    await cache.close();
  });

  it("fails with the filesystem's code when the root stops being writable", async () => {
    const cache = await openCache();
    const source = sampleTree(tempDir("src"));
    // Replacing the staging area by a file makes every temp creation fail, as a read-only root would.
    (await import("node:fs")).rmSync(join(cache.root, ".staging"), { recursive: true });
    writeFileSync(join(cache.root, ".staging"), "");
    const error = await cache.stage(source, "nowrite").catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "ENOTDIR", name: "StageCacheError" });
    expect(existsSync(join(cache.root, "no", "nowrite"))).toBe(false);
    await cache.close();
  });

  it("leaves nothing behind when aborted", async () => {
    const cache = await openCache();
    const source = sampleTree(tempDir("src"));
    const controller = new AbortController();
    const pending = cache.stage(source, "aborted", { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
    await cache.close();
    expect(existsSync(join(cache.root, "ab", "aborted"))).toBe(false);
    expect(readdirSync(join(cache.root, ".staging"))).toEqual([]);
  });
});

it("creates fan-out directories only as needed, and eviction removes those it empties", async () => {
  const cache = await openCache({ minAgeMs: 0 });
  expect(readdirSync(cache.root).sort()).toEqual([".scratch", ".staging", ".trash"]);
  const path = await cache.stage(sampleTree(tempDir("src")), "zz-entry");
  expect(path).toBe(join(cache.root, "zz", "zz-entry"));
  expect(readdirSync(cache.root).sort()).toEqual([".scratch", ".staging", ".trash", "zz"]);
  expect(await cache.remove("zz-entry")).toMatchObject({ removed: true });
  expect(readdirSync(cache.root).sort()).toEqual([".scratch", ".staging", ".trash"]);
  await cache.close();
});

describe("slot names on case-insensitive filesystems", () => {
  it("writes each upper-case letter as ! and its lower-case form, fan-out included", async () => {
    const cache = await openCache();
    const upper = await cache.stage(writeTree(tempDir("src"), { f: "upper" }), "ABc");
    const lower = await cache.stage(writeTree(tempDir("src"), { f: "lower" }), "abc");
    expect(upper).toBe(join(cache.root, "!a!b", "!a!bc"));
    expect(lower).toBe(join(cache.root, "ab", "abc"));
    expect(readFileSync(join(upper, "f"), "utf8")).toBe("upper");
    expect(readFileSync(join(lower, "f"), "utf8")).toBe("lower");
    await cache.close();
  });

  it(`gives different fingerprints paths that differ even compared without case (CAS_SEED=${SEED})`, async () => {
    const rng = new Rng(SEED);
    const cache = await openCache();
    const layout = new Layout(cache.root);
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
    const seen = new Map<string, string>();
    for (let i = 0; i < 2000; i++) {
      let fingerprint = rng.pick([..."ABab01"]);
      for (let n = rng.int(6); n > 0; n--) fingerprint += rng.pick([...alphabet]);
      const folded = relative(cache.root, layout.slotPath(fingerprint));
      // All lower case already: a case-insensitive filesystem sees exactly these bytes.
      expect(folded, `CAS_SEED=${SEED}`).toBe(folded.toLowerCase());
      const other = seen.get(folded);
      if (other !== undefined)
        expect(other, `CAS_SEED=${SEED}: ${other} and ${fingerprint} share a slot`).toBe(fingerprint);
      seen.set(folded, fingerprint);
    }
    await cache.close();
  });

  it("lists a slot an older version named with upper-case letters, which ages out and can be removed", async () => {
    const cache = await openCache({ minAgeMs: 0 });
    const legacy = join(cache.root, "AB", "ABC");
    writeTree(legacy, { f: "old", [STAGE_COMPLETE_SENTINEL]: '{"version":1,"files":1,"bytes":3}' });
    const source = writeTree(tempDir("src"), { f: "new" });
    // Not a hit: the fingerprint now lives under its escaped name.
    expect(await cache.stage(source, "ABC")).toBe(join(cache.root, "!a!b", "!a!b!c"));
    expect((await cache.list()).entries.map((entry) => [entry.fingerprint, entry.path]).sort()).toEqual([
      ["ABC", join(cache.root, "!a!b", "!a!b!c")],
      ["ABC", legacy],
    ]);
    const old = new Date(Date.now() - 3_600_000);
    utimesSync(join(legacy, STAGE_COMPLETE_SENTINEL), old, old);
    const capped = await StageCache.open({ root: cache.root, maxBytes: 3, minAgeMs: 60_000 });
    expect((await capped.sweep()).removed).toEqual([legacy]);
    await capped.close();
    writeTree(legacy, { f: "old", [STAGE_COMPLETE_SENTINEL]: '{"version":1,"files":1,"bytes":3}' });
    expect(await cache.remove("ABC")).toMatchObject({
      removed: true,
      path: join(cache.root, "!a!b", "!a!b!c"),
    });
    expect(await cache.remove("ABC")).toMatchObject({ removed: true, path: legacy });
    expect(existsSync(join(cache.root, "AB"))).toBe(false);
    await cache.close();
  });
});

describe("concurrent calls for one fingerprint in one process", () => {
  /** Stages `fp` twice at once: the first call (the leader, which copies) with `leader`'s signal. */
  async function leaderAndJoiner(abortLeaderWith: unknown) {
    const source = sampleTree(tempDir("src"));
    const cache = await openCache();
    const controller = new AbortController();
    // The leader aborts as soon as its copy is under way, with whatever reason the caller chose.
    const leader = cache.stage(source, "shared", {
      signal: controller.signal,
      onProgress: () => controller.abort(abortLeaderWith),
    });
    const joiner = cache.stage(source, "shared");
    const [led, joined] = await Promise.allSettled([leader, joiner]);
    return { cache, source, led, joined };
  }

  for (const [label, reason] of [
    ["an AbortError", new DOMException("stopped", "AbortError")],
    ["a TimeoutError, as AbortSignal.timeout() gives", new DOMException("timed out", "TimeoutError")],
    ["an Error of the caller's own", new Error("user pressed stop")],
    ["a value that is no Error at all", "just a string"],
  ] as const) {
    it(`lets a joiner finish when the leader's signal aborts with ${label}`, async () => {
      const { cache, source, led, joined } = await leaderAndJoiner(reason);
      expect(led).toEqual({ status: "rejected", reason });
      expect(joined.status).toBe("fulfilled");
      const path = (joined as PromiseFulfilledResult<string>).value;
      expect(readTree(path, { skipSentinel: true })).toEqual(readTree(source));
      // The leader's temp dir goes once its copy has stopped (cas.stage does not wait for that to reject).
      await until(
        () => readdirSync(join(cache.root, ".staging")).length === 0,
        "the aborted temp dir is gone",
      );
      await cache.close();
    });
  }

  it("rejects a joiner whose own signal aborts, and lets the leader finish", async () => {
    const source = sampleTree(tempDir("src"));
    const cache = await openCache();
    const controller = new AbortController();
    const reason = new DOMException("timed out", "TimeoutError");
    const leader = cache.stage(source, "shared", { onProgress: () => controller.abort(reason) });
    const joiner = cache.stage(source, "shared", { signal: controller.signal });
    const [led, joined] = await Promise.allSettled([leader, joiner]);
    expect(joined).toEqual({ status: "rejected", reason });
    expect(led.status).toBe("fulfilled");
    await cache.close();
  });
});

describe("a source inside the cache root", () => {
  it("is refused at once with ESOURCEINCACHE, before any temp dir exists", async () => {
    const cache = await openCache();
    const entry = await cache.stage(sampleTree(tempDir("src")), "entry");
    const link = join(tempDir("link"), "into-cache");
    symlinkSync(join(cache.root, ".staging"), link);
    let temps = 0;
    const watcher = watch(join(cache.root, ".staging"), () => temps++);
    try {
      for (const source of [
        join(cache.root, ".staging"),
        cache.root,
        join(cache.root, ".trash"),
        entry,
        link,
      ]) {
        for (const fingerprint of ["inside", undefined]) {
          const error = await cache.stage(source, fingerprint).catch((e: unknown) => e);
          expect(error).toBeInstanceOf(StageCacheError);
          expect(error).toMatchObject({ code: "ESOURCEINCACHE", path: source });
          expect((error as Error).message).toContain(`is inside the cache root ${cache.root}`);
        }
      }
    } finally {
      watcher.close();
    }
    expect(temps).toBe(0);
    expect(readdirSync(join(cache.root, ".staging"))).toEqual([]);
    expect(readdirSync(join(cache.root, ".scratch"))).toEqual([]);
    await cache.close();
  });

  it("does not catch a sibling whose name only starts like the root", async () => {
    const base = tempDir("root");
    const cache = await StageCache.open({ root: join(base, "cache") });
    const sibling = sampleTree(join(base, "cache-sources"));
    expect(await cache.stage(sibling, "sibling")).toBe(join(cache.root, "si", "sibling"));
    await cache.close();
  });
});

it("throws ECLOSED from every call after close()", async () => {
  const cache = await openCache();
  await cache.close();
  const source = sampleTree(tempDir("src"));
  for (const call of [
    () => cache.stage(source, "x"),
    () => cache.stage(source),
    () => cache.sweep(),
    () => cache.list(),
    () => cache.clean(),
    () => cache.remove("x"),
  ]) {
    await expect(call()).rejects.toMatchObject({ code: "ECLOSED", name: "StageCacheError" });
  }
});
