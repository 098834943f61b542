// One cache root shared by two users, root and nobody, each in its own real process (spawned with the user's
// uid and gid, and setting its umask first): every path a call returns must be readable by the user it is
// returned to, or the call fails with a clear error; never a hit on an entry that user cannot read.
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { kernelDescribe } from "@cas-stage/test-support/kernel";
import { expect, it } from "vitest";
import { sampleTree, tempDir } from "./fixtures.js";
import { NOBODY, type OnceResult, stageOnce } from "./processes.js";

const ROOT_USER = { uid: 0, gid: 0 };
const UNMARKABLE =
  "cannot mark entries of another user as used (no write permission): their owner's eviction does not see this use";

type RootKind = "group" | "sticky";

/**
 * A cache root the two users share: a directory of a group nobody is in (nogroup), mode 2775 so that
 * everything made inside belongs to that group; or a world-writable sticky directory (1777), like /tmp.
 */
function sharedRoot(kind: RootKind): string {
  const base = tempDir("shared");
  chmodSync(base, 0o755);
  const root = join(base, "cache");
  mkdirSync(root);
  if (kind === "group") {
    chownSync(root, 0, NOBODY.gid);
    chmodSync(root, 0o2775);
  } else {
    chmodSync(root, 0o1777);
  }
  return root;
}

/** A source tree both users can read. */
function sharedSource(seed: string): string {
  const dir = tempDir("src");
  chmodSync(dir, 0o755);
  return sampleTree(dir, seed);
}

function stageAs(
  user: { uid: number; gid: number },
  umask: number,
  job: { root: string; source?: string; fingerprint?: string; sweep?: boolean; options?: object },
): Promise<OnceResult> {
  return stageOnce({ ...job, umask }, { user });
}

function ageSentinel(path: string): number {
  const old = new Date(Date.now() - 3_600_000);
  utimesSync(join(path, ".cas-stage-complete"), old, old);
  return old.getTime();
}

kernelDescribe("otherUser", "a cache shared by two users", () => {
  it("works both ways in a group directory (2775) with umask 002: hits marked used, entries added and evicted by either", async () => {
    const root = sharedRoot("group");
    const source = sharedSource("a");
    const byRoot = await stageAs(ROOT_USER, 0o002, { root, source, fingerprint: "by-root" });
    expect(byRoot).toMatchObject({ path: join(root, "by", "by-root"), readable: true, warnings: [] });
    const aged = ageSentinel(byRoot.path as string);

    const hit = await stageAs(NOBODY, 0o002, { root, source, fingerprint: "by-root" });
    expect(hit).toMatchObject({ path: byRoot.path, readable: true, warnings: [] });
    // Recorded as a use (a byte of the sentinel rewritten, since only its owner may set its times).
    expect(hit.sentinelMtimeMs).toBeGreaterThan(aged);

    const byNobody = await stageAs(NOBODY, 0o002, {
      root,
      source: sharedSource("b"),
      fingerprint: "by-nobody",
    });
    expect(byNobody).toMatchObject({ path: join(root, "by", "by-nobody"), readable: true, warnings: [] });
    expect(await stageAs(ROOT_USER, 0o002, { root, source, fingerprint: "by-nobody" })).toMatchObject({
      path: byNobody.path,
      readable: true,
    });
    expect(await stageAs(NOBODY, 0o002, { root, source })).toMatchObject({ readable: true, warnings: [] });

    const swept = await stageAs(NOBODY, 0o002, { root, sweep: true, options: { maxBytes: 1, minAgeMs: 0 } });
    expect(swept.sweep?.removed.sort()).toEqual([byNobody.path, byRoot.path]);
    expect(swept.warnings).toEqual([]);
    expect(readdirSync(join(root, ".trash"))).toEqual([]);
  });

  for (const [kind, umask] of [
    ["group", 0o022],
    ["sticky", 0o002],
    ["sticky", 0o022],
  ] as const) {
    it(`in a ${kind === "group" ? "group directory (2775)" : "sticky directory (1777)"} with umask ${umask.toString(8).padStart(3, "0")}: another user's entries are readable hits, new ones fail clearly`, async () => {
      const root = sharedRoot(kind);
      const source = sharedSource("a");
      const byRoot = await stageAs(ROOT_USER, umask, { root, source, fingerprint: "by-root" });
      const aged = ageSentinel(byRoot.path as string);

      const hit = await stageAs(NOBODY, umask, { root, source, fingerprint: "by-root" });
      expect(hit).toMatchObject({ path: byRoot.path, readable: true });
      expect(hit.warnings).toEqual([{ message: UNMARKABLE, path: byRoot.path }]);
      // Not recorded as a use (utimes goes through floating-point seconds: allow its rounding).
      expect(Math.abs((hit.sentinelMtimeMs as number) - aged)).toBeLessThan(1);

      // Nobody may not write into the directories root made: a clear error, and nothing left behind.
      for (const fingerprint of ["by-nobody", undefined]) {
        const added = await stageAs(NOBODY, umask, { root, source, ...(fingerprint ? { fingerprint } : {}) });
        expect(added.error).toMatchObject({ name: "StageCacheError", code: "EACCES", path: root });
        expect(added.error?.message).toMatch(
          /^stage-cache: cannot write to cache root .*: EACCES: permission denied, .*; pass a writable root or set CAS_STAGE_CACHE_DIR$/,
        );
      }
      expect(existsSync(join(root, "by", "by-nobody"))).toBe(false);
      expect(readdirSync(join(root, ".staging"))).toEqual([]);
      expect(readdirSync(join(root, ".scratch"))).toEqual([]);
    });
  }

  it("refuses to open a root this user cannot write, naming it", async () => {
    const base = tempDir("shared");
    chmodSync(base, 0o755);
    const root = join(base, "cache");
    await stageAs(ROOT_USER, 0o022, { root, source: sharedSource("a"), fingerprint: "by-root" });
    const opened = await stageAs(NOBODY, 0o022, { root, source: sharedSource("a"), fingerprint: "by-root" });
    expect(opened.error).toMatchObject({ name: "StageCacheError", code: "EACCES", path: root });
    expect(opened.error?.message).toMatch(/^stage-cache: cannot write to cache root .*EACCES/);
  });

  it("refuses, never returns, an entry this user cannot read", async () => {
    const root = sharedRoot("group");
    const source = sharedSource("a");
    // The private directories group-writable, then one entry made under umask 077: readable by root only.
    await stageAs(ROOT_USER, 0o002, { root, source, fingerprint: "open" });
    const hidden = await stageAs(ROOT_USER, 0o077, { root, source, fingerprint: "private" });
    expect(hidden).toMatchObject({ path: join(root, "pr", "private"), readable: true });

    const refused = await stageAs(NOBODY, 0o002, { root, source, fingerprint: "private" });
    expect(refused.path).toBeUndefined();
    expect(refused.error).toMatchObject({ name: "StageCacheError", code: "EACCES", path: hidden.path });
    expect(refused.error?.message).toMatch(
      /cache entry .*private belongs to another user and is not readable by this one; use a cache directory of your own/,
    );
    expect(readdirSync(join(root, ".staging"))).toEqual([]);
  });
});
