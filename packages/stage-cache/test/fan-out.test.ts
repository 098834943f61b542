// An evictor removes the fan-out directory it empties (rmdir), while a build in another process may be
// about to put a slot into it. The two windows where that used to fail a stage are forced open here: the
// stager runs under strace, which holds one syscall on the fan-out path for seconds, and the test evicts
// exactly while it is held. The strace log proves the window was hit (the stager's next step on the fan-out
// failed with ENOENT), and the stage must succeed anyway.
import { readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { StageCache } from "../src/index.js";
import { readTree, tempDir, until, writeTree } from "./fixtures.js";
import { stageOnce } from "./processes.js";

const HOLD_US = 2_000_000;

/** A root with one old entry `aa-old`, the only slot of the fan-out directory `aa`. */
async function rootWithOldEntry() {
  const root = join(tempDir("root"), "cache");
  const cache = await StageCache.open({ root });
  const old = await cache.stage(writeTree(tempDir("src"), { f: "old" }), "aa-old");
  await cache.close();
  const hourAgo = new Date(Date.now() - 3_600_000);
  utimesSync(join(old, ".cas-stage-complete"), hourAgo, hourAgo);
  return { root, fanOut: join(root, "aa") };
}

/** Evicts `aa-old` as another process's sweep would, which removes the emptied fan-out directory too. */
async function evictOldEntry(root: string): Promise<string[]> {
  const sweeper = await StageCache.open({ root, maxBytes: 1, minAgeMs: 60_000, cleanOnOpen: false });
  const { removed } = await sweeper.sweep();
  await sweeper.close();
  return removed;
}

/**
 * Stages `aa-new` in a child process whose `syscalls` strace holds at entry as `inject` says (only those on
 * `path` when `only` is set, since strace's -P filter is by path), runs `whileHeld` once strace has logged
 * the entry of such a call on `path` (so the stager is inside the window), and returns the stage's result
 * and the strace log.
 */
async function stageWhileHeld(
  root: string,
  syscalls: string,
  inject: string,
  path: string,
  only: boolean,
  whileHeld: () => Promise<void>,
) {
  const log = join(tempDir("strace"), "log");
  writeFileSync(log, "");
  const source = writeTree(tempDir("src"), { "a.txt": "new a", "b.txt": "new b" });
  const child = stageOnce(
    { root, source, fingerprint: "aa-new" },
    {
      wrap: [
        "strace",
        "-f",
        "-qq",
        "-o",
        log,
        ...(only ? ["-P", path] : []),
        "-e",
        `trace=${syscalls}`,
        "-e",
        `inject=${inject}`,
      ],
    },
  );
  const held = new RegExp(`(${syscalls.replaceAll(",", "|")})\\([^\\n]*"${path}"`);
  await until(() => held.test(readFileSync(log, "utf8")), `the stager is held in ${syscalls} on ${path}`);
  await whileHeld();
  const result = await child;
  return { result, source, log: readFileSync(log, "utf8") };
}

describe("a stage while another process empties and removes its fan-out directory", () => {
  it("succeeds when the directory goes between the build's mkdir and the check of it", async () => {
    const { root, fanOut } = await rootWithOldEntry();
    // Node's recursive mkdir of an existing directory is mkdir (EEXIST), then a stat of it: hold the stat.
    const { result, source, log } = await stageWhileHeld(
      root,
      "mkdir,statx",
      `statx:delay_enter=${HOLD_US}`,
      fanOut,
      true,
      async () => {
        expect(await evictOldEntry(root)).toEqual([join(fanOut, "aa-old")]);
      },
    );
    expect(log).toMatch(/mkdir\("[^"]*\/aa", 0777\)\s+= -1 EEXIST/);
    expect(log).toMatch(/statx\(AT_FDCWD, "[^"]*\/aa", .*= -1 ENOENT/);
    expect(result.error).toBeUndefined();
    expect(result).toMatchObject({ path: join(fanOut, "aa-new"), readable: true });
    expect(readTree(result.path as string, { skipSentinel: true })).toEqual(readTree(source));
  });

  it("succeeds when the directory goes between the build's mkdir and its rename into it", async () => {
    const { root, fanOut } = await rootWithOldEntry();
    const slot = join(fanOut, "aa-new");
    // The stager renames nothing but its temp dirs into the slot: hold every rename.
    const { result, source, log } = await stageWhileHeld(
      root,
      "rename,renameat,renameat2",
      `rename,renameat,renameat2:delay_enter=${HOLD_US}`,
      slot,
      false,
      async () => {
        expect(await evictOldEntry(root)).toEqual([join(fanOut, "aa-old")]);
      },
    );
    // The first rename found no fan-out directory; a later one, after a rebuild, published the slot.
    expect(log).toMatch(/rename[a-z0-9]*\([^\n]*"[^"]*\/aa\/aa-new"[^\n]*= -1 ENOENT/);
    expect(log).toMatch(/rename[a-z0-9]*\([^\n]*"[^"]*\/aa\/aa-new"[^\n]*= 0/);
    expect(result.error).toBeUndefined();
    expect(result).toMatchObject({ path: slot, readable: true });
    expect(readTree(slot, { skipSentinel: true })).toEqual(readTree(source));
  });
});
