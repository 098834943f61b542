// The eviction module's own contracts, below StageCache: how it lists a root's entries and memoizes their
// sizes, what it reads from a sentinel, and how it runs its passes (one at a time, one more when asked
// during a pass, none without a cap). Passes are held open with the afterList seam, never with sleeps.
import {
  chmodSync,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  type CacheEntry,
  Evictor,
  entrySize,
  listEntries,
  listSlots,
  measureTree,
  readdirOrEmpty,
} from "../src/evict.js";
import { EVICTION_CLAIM, Layout, STAGE_COMPLETE_SENTINEL } from "../src/layout.js";
import { tempDir, writeTree } from "./fixtures.js";
import { isRoot, NOBODY, stageOnce } from "./processes.js";

/** A complete slot made by hand: `content` as its one file, `header` as its sentinel's first line. */
function slotWith(root: string, fingerprint: string, header: string, content = "12345"): string {
  const slot = join(root, fingerprint.slice(0, 2), fingerprint);
  writeTree(slot, { data: content });
  writeSentinel(slot, header);
  return slot;
}

function writeSentinel(slot: string, header: string): void {
  writeFileSync(join(slot, STAGE_COMPLETE_SENTINEL), `${header}\n`);
}

const recording = (bytes: number) => JSON.stringify({ version: 1, files: 1, bytes });

/** A gate a pass waits at in afterList: `reached` resolves when it arrives, `open()` lets it on. */
function gate() {
  let arrive: () => void = () => {};
  let open: () => void = () => {};
  const reached = new Promise<void>((resolve) => {
    arrive = resolve;
  });
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  const wait = () => {
    arrive();
    return opened;
  };
  return { reached, open, wait };
}

function evictorFor(root: string, maxBytes: number, afterList?: (entries: readonly CacheEntry[]) => unknown) {
  const layout = new Layout(root);
  const warnings: string[] = [];
  // Every claim is an interrupted eviction's: these tests never claim an entry themselves.
  const store = layout.entryStore({ claimGraceMs: 0 });
  const evictor = new Evictor(layout, store, {
    maxBytes,
    minAgeMs: 0,
    onWarning: (message) => warnings.push(message),
    afterList,
  });
  return { evictor, warnings, layout };
}

/** Lets every callback that is already due run, so that a promise that could settle now has settled. */
const drain = () => new Promise((resolve) => setImmediate(resolve));

describe("listing the entries of a root", () => {
  it("reads each entry's size from its sentinel once and reuses it while the sentinel stays", async () => {
    const root = tempDir("root");
    const slot = slotWith(root, "abc", recording(7));
    const sizes = new Map<string, number>();
    expect((await listEntries(new Layout(root), sizes)).map((e) => e.bytes)).toEqual([7]);
    writeSentinel(slot, recording(9));
    expect((await listEntries(new Layout(root), sizes)).map((e) => e.bytes)).toEqual([7]);
    expect((await listEntries(new Layout(root))).map((e) => e.bytes)).toEqual([9]);
  });

  it("forgets a remembered size once the sentinel is gone, and lists that slot among the others", async () => {
    const root = tempDir("root");
    const slot = slotWith(root, "abc", recording(7));
    const sizes = new Map<string, number>();
    await listEntries(new Layout(root), sizes);
    rmSync(join(slot, STAGE_COMPLETE_SENTINEL));
    const others: { path: string }[] = [];
    expect(await listEntries(new Layout(root), sizes, others as never)).toEqual([]);
    expect(others.map((o) => o.path)).toEqual([slot]);
    writeSentinel(slot, recording(9));
    expect((await listEntries(new Layout(root), sizes)).map((e) => e.bytes)).toEqual([9]);
  });

  it("leaves out, and never counts, an entry whose sentinel this user cannot read", async () => {
    const root = tempDir("root");
    slotWith(root, "abc", recording(7));
    const unreadable = slotWith(root, "abd", recording(9));
    chmodSync(join(unreadable, STAGE_COMPLETE_SENTINEL), 0o000);
    // As root every sentinel is readable: the pass runs in a process of the unprivileged user nobody.
    if (isRoot) {
      chmodSync(root, 0o777);
      for (const dir of [".staging", ".scratch", ".trash"]) mkdirSync(join(root, dir), { mode: 0o777 });
      for (const dir of [".staging", ".scratch", ".trash"]) chmodSync(join(root, dir), 0o777);
    }
    const job = { root, sweep: true, options: { maxBytes: 1e9, cleanOnOpen: false } };
    const { sweep, error } = await stageOnce(job, isRoot ? { user: NOBODY } : {});
    expect(error).toBeUndefined();
    expect(sweep).toEqual({ removed: [], freedBytes: 0, totalBytes: 7, measuredOnly: false });
    expect(existsSync(join(unreadable, STAGE_COMPLETE_SENTINEL))).toBe(true);
  });

  it("skips files directly under the root, where only fan-out directories are read", async () => {
    const root = tempDir("root");
    const slot = slotWith(root, "abc", recording(7));
    writeFileSync(join(root, "ab.lock"), "");
    writeFileSync(join(root, "zz"), "");
    expect((await listSlots(new Layout(root))).map((s) => s.path)).toEqual([slot]);
  });
});

describe("the size of an entry", () => {
  it("is what its sentinel records, 0 included, without walking the entry", async () => {
    const slot = slotWith(tempDir("root"), "abc", recording(0), "five!");
    expect(await entrySize(slot)).toBe(0);
  });

  for (const [what, header] of [
    ["a foreign marker that is not JSON", "done"],
    ["a header without a size", JSON.stringify({ version: 1 })],
    ["a size that is not a number", JSON.stringify({ version: 1, bytes: "12" })],
    ["a negative size", JSON.stringify({ version: 1, bytes: -1 })],
  ] as const) {
    it(`is measured on disk for a sentinel with ${what}`, async () => {
      const slot = slotWith(tempDir("root"), "abc", header, "five!");
      // Everything in the slot counts, its sentinel too.
      expect(await entrySize(slot)).toBe(5 + Buffer.byteLength(`${header}\n`));
    });
  }

  it("is undefined when there is no sentinel to read", async () => {
    const root = tempDir("root");
    mkdirSync(join(root, "ab", "abc"), { recursive: true });
    expect(await entrySize(join(root, "ab", "abc"))).toBeUndefined();
  });
});

describe("measuring a tree", () => {
  it("counts a missing path as nothing, never throwing", async () => {
    expect(await measureTree(join(tempDir("root"), "missing"))).toEqual({ bytes: 0, newestMtimeMs: 0 });
  });

  it("counts a file as its size and mtime", async () => {
    const file = join(tempDir("root"), "f");
    writeFileSync(file, "abcd");
    utimesSync(file, new Date(5_000), new Date(5_000));
    expect(await measureTree(file)).toEqual({ bytes: 4, newestMtimeMs: 5_000 });
  });
});

describe("reading a directory that may be gone", () => {
  it("gives no entries for a missing directory or a file", async () => {
    const dir = tempDir("root");
    writeFileSync(join(dir, "file"), "");
    expect(await readdirOrEmpty(join(dir, "missing"))).toEqual([]);
    expect(await readdirOrEmpty(join(dir, "file"))).toEqual([]);
  });

  it("throws any other error, such as a symbolic link loop", async () => {
    const dir = tempDir("root");
    symlinkSync("loop", join(dir, "loop"));
    await expect(readdirOrEmpty(join(dir, "loop"))).rejects.toMatchObject({ code: "ELOOP" });
  });
});

describe("eviction passes", () => {
  it("never runs in the background without a cap", async () => {
    const root = tempDir("root");
    slotWith(root, "abc", recording(7));
    let passes = 0;
    const { evictor } = evictorFor(root, 0, () => {
      passes++;
    });
    evictor.schedule();
    await evictor.idle();
    expect(passes).toBe(0);
    expect((await evictor.sweep(true)).measuredOnly).toBe(true);
    expect(passes).toBe(1);
  });

  it("run one at a time: passes asked for during a pass make exactly one more, after it", async () => {
    const root = tempDir("root");
    slotWith(root, "abc", recording(7));
    const first = gate();
    let passes = 0;
    let running = 0;
    let mostAtOnce = 0;
    const { evictor } = evictorFor(root, 1e9, async () => {
      passes++;
      running++;
      mostAtOnce = Math.max(mostAtOnce, running);
      if (passes === 1) await first.wait();
      running--;
    });
    evictor.schedule();
    await first.reached;
    evictor.schedule();
    evictor.schedule();
    await drain();
    expect(passes).toBe(1);
    first.open();
    await evictor.idle();
    expect({ passes, mostAtOnce }).toEqual({ passes: 2, mostAtOnce: 1 });
  });

  it("run a pass asked for during a sweep once the sweep is done, even a dry one", async () => {
    const root = tempDir("root");
    slotWith(root, "abc", recording(7));
    const first = gate();
    let passes = 0;
    const { evictor } = evictorFor(root, 1e9, async () => {
      passes++;
      if (passes === 1) await first.wait();
    });
    const sweep = evictor.sweep(true);
    await first.reached;
    evictor.schedule();
    first.open();
    await sweep;
    await evictor.idle();
    expect(passes).toBe(2);
  });

  for (const [what, start] of [
    ["a background pass", (e: Evictor) => e.schedule()],
    ["an earlier sweep", (e: Evictor) => void e.sweep(false)],
  ] as const) {
    it(`are waited for by idle() when a sweep was asked for during ${what}`, async () => {
      const root = tempDir("root");
      slotWith(root, "abc", recording(7));
      const gates = [gate(), gate()];
      let passes = 0;
      const { evictor } = evictorFor(root, 1e9, () => gates[passes++]?.wait());
      start(evictor);
      await gates[0]?.reached;
      const sweep = evictor.sweep(false);
      gates[0]?.open();
      await gates[1]?.reached;
      let idle = false;
      const waiting = evictor.idle().then(() => {
        idle = true;
      });
      await drain();
      expect(idle, "idle() while the second pass runs").toBe(false);
      gates[1]?.open();
      await sweep;
      await waiting;
      expect(idle).toBe(true);
    });
  }

  it("reuse a remembered entry size until told to forget it", async () => {
    const root = tempDir("root");
    const slot = slotWith(root, "abc", recording(7));
    const { evictor } = evictorFor(root, 1e9);
    expect((await evictor.sweep(false)).totalBytes).toBe(7);
    writeSentinel(slot, recording(9));
    expect((await evictor.sweep(false)).totalBytes).toBe(7);
    evictor.forget(slot);
    expect((await evictor.sweep(false)).totalBytes).toBe(9);
  });

  it("leave abandoned trash and interrupted claims in place in a dry run, and clear them otherwise", async () => {
    const root = tempDir("root");
    slotWith(root, "abc", recording(7));
    const claimed = slotWith(root, "abd", recording(7));
    const { evictor, layout } = evictorFor(root, 1e9);
    // An evictor that died after its claim.
    const claim = join(claimed, EVICTION_CLAIM);
    renameSync(join(claimed, STAGE_COMPLETE_SENTINEL), claim);
    const trash = writeTree(
      join(layout.trashDir, `gone.${(Date.now() - 3_600_000).toString(36)}.0123456789ab`),
      {
        f: "x",
      },
    );
    await evictor.sweep(true);
    expect(existsSync(trash)).toBe(true);
    expect(existsSync(claim)).toBe(true);
    await evictor.sweep(false);
    expect(existsSync(trash)).toBe(false);
    expect(existsSync(join(claimed, STAGE_COMPLETE_SENTINEL))).toBe(true);
  });
});
