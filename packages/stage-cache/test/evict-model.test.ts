import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  utimesSync,
} from "node:fs";
import { basename, join } from "node:path";
import { describe, expect, it } from "vitest";
import { STAGE_COMPLETE_SENTINEL, StageCache } from "../src/index.js";
import { readTree, tempDir, writeTree } from "./fixtures.js";

// A model-based property test of eviction and crash debris. A seeded generator drives random sequences of
// operations against a real StageCache on a real temp root and against a tiny in-memory model; after every
// step the disk must match the model exactly and every sweep must obey the LRU rules.
//
// Reproduce a failure with the seed printed in the test name: `CAS_SEED=<seed> pnpm exec vitest run
// test/evict-model.test.ts` runs that sequence first. CAS_SEQUENCES and CAS_STEPS change the amount of work.
//
// Time is never waited for: "used long ago" is made by moving an mtime into the past with utimes, with ages
// far from minAgeMs on either side, so which entries are protected is never a matter of timing. Every put and
// get goes through a fresh StageCache (another process, in effect): a cache object memoizes what it resolved
// and re-checks it at most once a second, which is only sound in real time, not after an mtime was moved back
// by the test. The explicit sweeps and reopen() use one long-lived object, with its memoized entry sizes.

const MIN_AGE_MS = 60_000;
const MAX_BYTES = 6_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Peers keep stage temps for this long, so only an explicit reopen() with a shorter limit clears them. */
const PEER_STALE_MS = 30 * DAY_MS;
/** Trash whose name says it is younger than this is kept by open() and by every pass (evict.ts). */
const TRASH_GRACE_MS = 60_000;

const SEQUENCES = Math.max(1, envInt("CAS_SEQUENCES", 30)); // 0 would run nothing and pass
const STEPS = envInt("CAS_STEPS", 40);
const BASE_SEED = envInt("CAS_SEED", 20_251_125);

type Spec = Record<string, Buffer | [Buffer, number]>;

/**
 * Source trees of known sizes (as copied: 300, 1200, 1500, 3000, 4200, 7000 bytes; several sums hit MAX_BYTES
 * exactly, to pin "at most"). Dot-directories and node_modules are not copied, dotfiles are.
 */
const SOURCES: Spec[] = [
  { "one.txt": bytes(300, 1) },
  { "README.md": bytes(800, 2), "bin/run.sh": [bytes(360, 3), 0o755], ".env": bytes(40, 4) },
  {
    "src/a/b/deep.txt": bytes(1_500, 5),
    "src/empty.txt": bytes(0, 0),
    ".git/objects/pack": bytes(5_000, 6),
    "node_modules/dep/index.js": bytes(4_000, 7),
  },
  { "data/one.bin": bytes(1_000, 8), "data/two.bin": bytes(1_200, 9), "data/three.bin": bytes(800, 10) },
  { "big.bin": bytes(4_199, 11), small: bytes(1, 12) },
  { "huge.bin": bytes(7_000, 13) },
];

/**
 * Fingerprint → source. Two share a fan-out directory ("aa"), two name the same content, one looks like a
 * stage temp name, one is over the cap on its own ("Zz"), one is a single character.
 */
const FINGERPRINTS: Record<string, number> = {
  aa0001: 0,
  aa0002: 1,
  ab7f3c: 2,
  "b.dot": 3,
  "c_und-1": 4,
  "x.tmp.ABCDEF": 1,
  Zz: 5,
  "9": 2,
};
const FPS = Object.keys(FINGERPRINTS);

const FAN_OUT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]?$/;
const TEMP_NAME = /^(.+)\.tmp\.[A-Za-z0-9]{6}$/;
const TRASH_NAME = /^(.+)\.([0-9a-z]+)\.[0-9a-f]{12}$/;
const PRIVATE_DIRS = [".staging", ".scratch", ".trash"];

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be an integer >= 0`);
  return value;
}

function bytes(length: number, fill: number): Buffer {
  return Buffer.alloc(length, fill);
}

/** Whether a readTree key (`dir/` or `file`) is something a stage copies. */
function isCopied(key: string): boolean {
  // "a/b/" splits into ["a", "b", ""] and "a/f" into ["a", "f"]: all but the last part are directories.
  const dirs = key.split("/").slice(0, -1);
  return !dirs.some((part) => part.startsWith(".") || part === "node_modules");
}

function contentOf(spec: Buffer | [Buffer, number]): Buffer {
  return Array.isArray(spec) ? spec[0] : spec;
}

/** What the sentinel of a copy of `spec` records: copied regular files and the sum of their sizes. */
function summaryOf(spec: Spec): { files: number; bytes: number } {
  let files = 0;
  let total = 0;
  for (const [rel, file] of Object.entries(spec)) {
    if (!isCopied(rel)) continue;
    files++;
    total += contentOf(file).length;
  }
  return { files, bytes: total };
}

/** mulberry32: a tiny seeded generator, so a sequence is reproducible from its seed. */
class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }

  int(below: number): number {
    return Math.floor(this.next() * below);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error("pick from an empty list");
    return item;
  }

  hex(length: number): string {
    let out = "";
    while (out.length < length) out += this.int(16).toString(16);
    return out;
  }
}

interface ModelEntry {
  bytes: number;
  mtimeMs: number;
}

/** What the root should hold: complete entries, fan-out directories, and crash debris by name. */
class Model {
  readonly entries = new Map<string, ModelEntry>();
  readonly fanOuts = new Set<string>();
  /** Trash name → the creation time written into it. */
  readonly trash = new Map<string, number>();
  /** Stage temp name → its mtime. */
  readonly staging = new Map<string, number>();
  /** Slots without a sentinel, left by a foreign or older writer. Never entries, never evicted. */
  readonly foreign = new Set<string>();

  total(): number {
    let sum = 0;
    for (const entry of this.entries.values()) sum += entry.bytes;
    return sum;
  }

  /** open(): stage temps at least `staleAfterMs` old go, and trash past min(grace, staleAfterMs). */
  open(staleAfterMs: number, now: number): void {
    for (const [name, mtimeMs] of this.staging) if (mtimeMs <= now - staleAfterMs) this.staging.delete(name);
    this.dropTrash(now - Math.min(TRASH_GRACE_MS, staleAfterMs));
  }

  /** One eviction pass: least recently used first while over the cap, stopping at the first protected. */
  pass(now: number): string[] {
    const removed: string[] = [];
    let total = this.total();
    if (total > MAX_BYTES) {
      const byAge = [...this.entries].sort(([, a], [, b]) => a.mtimeMs - b.mtimeMs);
      for (const [fp, entry] of byAge) {
        if (total <= MAX_BYTES || now - entry.mtimeMs < MIN_AGE_MS) break;
        this.entries.delete(fp);
        total -= entry.bytes;
        removed.push(fp);
      }
      // Emptied fan-out directories go; one still holding a slot, complete or not, stays.
      const occupied = new Set([...this.entries.keys(), ...this.foreign].map((fp) => fp.slice(0, 2)));
      for (const fp of removed) if (!occupied.has(fp.slice(0, 2))) this.fanOuts.delete(fp.slice(0, 2));
    }
    this.dropTrash(now - TRASH_GRACE_MS);
    return removed;
  }

  dropTrash(cutoff: number): void {
    for (const [name, createdAt] of this.trash) if (createdAt <= cutoff) this.trash.delete(name);
  }

  /**
   * The model decides protection with the real clock, so no entry may sit near the minAgeMs boundary when
   * a pass runs. Ages are chosen far from it; this fails loudly instead of flaking if a sequence crawls.
   */
  assertUnambiguous(now: number): void {
    for (const [fp, entry] of this.entries) {
      const age = now - entry.mtimeMs;
      if (Math.abs(age - MIN_AGE_MS) < 5_000) {
        throw new Error(`entry ${fp} is ${age} ms old, too close to minAgeMs for the model to decide`);
      }
    }
  }
}

class Sequence {
  readonly root: string;
  readonly model = new Model();
  readonly trace: string[] = [];
  readonly warnings: string[] = [];
  readonly expectedWarnings: string[] = [];
  readonly #rng: Rng;
  readonly #sources: string[];
  readonly #trees: Record<string, string>[];
  #cache: StageCache | undefined;

  constructor(seed: number) {
    this.#rng = new Rng(seed);
    this.root = join(tempDir("model-root"), "cache");
    this.#sources = SOURCES.map((spec) => writeTree(tempDir("model-src"), spec));
    this.#trees = this.#sources.map((source) => {
      const tree = readTree(source, { withModes: true });
      return Object.fromEntries(Object.entries(tree).filter(([key]) => isCopied(key)));
    });
  }

  async start(): Promise<void> {
    this.#cache = await this.#open(PEER_STALE_MS);
    this.model.open(PEER_STALE_MS, Date.now());
  }

  async finish(): Promise<void> {
    await this.#cache?.close();
  }

  get cache(): StageCache {
    if (!this.#cache) throw new Error("sequence not started");
    return this.#cache;
  }

  slot(fp: string): string {
    return join(this.root, fp.slice(0, 2), fp);
  }

  #open(staleAfterMs: number): Promise<StageCache> {
    return StageCache.open({
      root: this.root,
      maxBytes: MAX_BYTES,
      minAgeMs: MIN_AGE_MS,
      staleAfterMs,
      onWarning: (message, path) => this.warnings.push(`${message} (${path})`),
    });
  }

  #source(fp: string): number {
    const index = FINGERPRINTS[fp];
    if (index === undefined) throw new Error(`unknown fingerprint ${fp}`);
    return index;
  }

  /** One random step. */
  async step(): Promise<void> {
    const rng = this.#rng;
    const present = [...this.model.entries.keys()];
    const roll = rng.int(100);
    if (roll < 20) return this.stage(rng.pick(FPS), "put");
    if (roll < 34) {
      return this.stage(present.length > 0 && rng.chance(0.7) ? rng.pick(present) : rng.pick(FPS), "get");
    }
    if (roll < 58 && present.length > 0) return this.age(rng.pick(present));
    if (roll < 66 && present.length > 0) return this.crashEvict(rng.pick(present));
    if (roll < 72) return this.crashBuild(rng.pick(FPS));
    const absent = FPS.filter((fp) => !this.model.entries.has(fp) && !this.model.foreign.has(fp));
    if (roll < 76 && absent.length > 0) return this.foreignPartial(rng.pick(absent));
    if (roll < 95) return this.sweep();
    return this.reopen(rng.pick([PEER_STALE_MS, HOUR_MS, 0]));
  }

  /**
   * put / get: stage through a fresh cache object. A hit must not copy, must touch the entry and must not
   * start an eviction pass; a miss copies, publishes a complete entry and runs one background pass, which
   * close() waits for.
   */
  async stage(fp: string, kind: "put" | "get"): Promise<void> {
    const expectHit = this.model.entries.has(fp);
    this.trace.push(`${kind}(${fp}) ${expectHit ? "hit" : "miss"}`);
    if (this.model.foreign.delete(fp)) {
      // The stage moves the foreign slot aside into trash, removes it and says so (unless it was empty,
      // when the rename of the new copy simply replaces it).
      if (readdirSync(this.slot(fp)).length > 0) {
        this.expectedWarnings.push(`removed an incomplete entry left by another writer (${this.slot(fp)})`);
      }
    }
    const before = this.completeOnDisk();
    const now = Date.now();
    this.model.assertUnambiguous(now);
    const peer = await this.#open(PEER_STALE_MS);
    this.model.open(PEER_STALE_MS, now);
    let progress = 0;
    const path = await peer.stage(this.#sources[this.#source(fp)] as string, fp, {
      onProgress: () => {
        progress++;
      },
    });
    await peer.close();

    // (5) stage always returns the slot, complete and holding its source's tree, whatever happened before.
    expect(path).toBe(this.slot(fp));
    this.expectComplete(fp);
    expect(progress > 0, expectHit ? "a hit copied" : "a miss did not copy").toBe(!expectHit);
    if (expectHit) {
      // utimes goes through floating-point seconds, so allow a millisecond of rounding.
      expect(
        lstatSync(join(path, STAGE_COMPLETE_SENTINEL)).mtimeMs,
        "a hit touches the entry",
      ).toBeGreaterThanOrEqual(now - 1);
      const entry = this.model.entries.get(fp) as ModelEntry;
      entry.mtimeMs = Date.now();
      const after = this.completeOnDisk();
      expect([...after.keys()].sort(), "a hit removed entries").toEqual([...before.keys()].sort());
      return;
    }
    this.model.entries.set(fp, { bytes: summaryOf(SOURCES[this.#source(fp)] as Spec).bytes, mtimeMs: now });
    this.model.fanOuts.add(fp.slice(0, 2));
    const predicted = this.model.pass(now);
    if (predicted.length > 0) this.trace.push(`  background pass removed ${predicted.join(", ")}`);
    const after = this.completeOnDisk();
    const removed = [...before.keys()].filter((name) => !after.has(name));
    expect(removed.sort(), "the background pass removed other entries than LRU order says").toEqual(
      [...predicted].sort(),
    );
    this.expectLruRemoval(before, removed, after, now);
  }

  /** age: the entry was last used `ms` ago, either well within minAgeMs or well past it. */
  age(fp: string): void {
    const now = Date.now();
    let mtimeMs: number;
    if (this.#rng.chance(0.35)) {
      mtimeMs = now - (1_000 + this.#rng.int(20_000));
    } else {
      mtimeMs = now - (MIN_AGE_MS + 10_000 + this.#rng.int(36_000) * 1_000);
      // Distinct ages among old entries, so the LRU order is never a tie.
      const others = [...this.model.entries]
        .filter(([other]) => other !== fp)
        .map(([, entry]) => entry.mtimeMs);
      while (others.some((other) => Math.abs(other - mtimeMs) < 1_000)) mtimeMs -= 1_000;
    }
    this.trace.push(`age(${fp}, ${now - mtimeMs} ms)`);
    // An entry's last use is its sentinel's mtime.
    utimesSync(join(this.slot(fp), STAGE_COMPLETE_SENTINEL), new Date(mtimeMs), new Date(mtimeMs));
    (this.model.entries.get(fp) as ModelEntry).mtimeMs = mtimeMs;
  }

  /**
   * crashEvict: an evictor killed mid-delete. The slot was renamed into trash in one step (trashPath's name
   * format), then some of its files were removed, maybe the sentinel. The name's time is now (an evictor that
   * may still be running) or ten minutes ago (abandoned).
   */
  crashEvict(fp: string): void {
    const createdAt = this.#rng.chance(0.3) ? Date.now() - 10 * 60_000 : Date.now();
    const name = `${fp}.${createdAt.toString(36)}.${this.#rng.hex(12)}`;
    const trash = join(this.root, ".trash", name);
    renameSync(this.slot(fp), trash);
    const deleted: string[] = [];
    for (const rel of filesUnder(trash)) {
      if (this.#rng.chance(0.5)) {
        rmSync(join(trash, rel));
        deleted.push(rel);
      }
    }
    this.trace.push(`crashEvict(${fp}) -> ${name}, deleted [${deleted.join(", ")}]`);
    this.model.entries.delete(fp);
    this.model.trash.set(name, createdAt);
    expect(existsSync(this.slot(fp))).toBe(false);
  }

  /**
   * foreignPartial: a slot without a sentinel, as a foreign or older writer could leave it, used long ago.
   * It is not an entry: never counted, never evicted, and a stage of its fingerprint replaces it.
   */
  foreignPartial(fp: string): void {
    const slot = this.slot(fp);
    const partial: Spec = {};
    for (const [rel, file] of Object.entries(SOURCES[this.#source(fp)] as Spec)) {
      if (isCopied(rel) && this.#rng.chance(0.6)) partial[rel] = file;
    }
    writeTree(slot, partial);
    mkdirSync(slot, { recursive: true });
    const old = new Date(Date.now() - 10 * HOUR_MS);
    utimesSync(slot, old, old);
    this.trace.push(`foreignPartial(${fp}) [${Object.keys(partial).join(", ")}]`);
    this.model.foreign.add(fp);
    this.model.fanOuts.add(fp.slice(0, 2));
  }

  /** crashBuild: a builder killed mid-copy left a stage temp with part of the tree and no sentinel. */
  crashBuild(fp: string): void {
    const temp = mkdtempSync(join(this.root, ".staging", `${fp}.tmp.`));
    const spec = SOURCES[this.#source(fp)] as Spec;
    const partial: Spec = {};
    for (const [rel, file] of Object.entries(spec)) {
      if (isCopied(rel) && this.#rng.chance(0.6)) partial[rel] = file;
    }
    writeTree(temp, partial);
    const mtimeMs = this.#rng.chance(0.5) ? Date.now() - 2 * HOUR_MS : Date.now();
    utimesSync(temp, new Date(mtimeMs), new Date(mtimeMs));
    this.trace.push(`crashBuild(${fp}) -> ${basename(temp)}, ${Date.now() - mtimeMs} ms old`);
    this.model.staging.set(basename(temp), mtimeMs);
  }

  /** sweep: an explicit pass through the long-lived object; its result must agree with the model. */
  async sweep(): Promise<void> {
    const before = this.completeOnDisk();
    const now = Date.now();
    this.model.assertUnambiguous(now);
    const result = await this.cache.sweep();
    const predicted = this.model.pass(now);
    this.trace.push(`sweep() removed [${predicted.join(", ")}], total ${this.model.total()}`);
    expect(result.removed, "sweep removes in LRU order, oldest first").toEqual(
      predicted.map((fp) => this.slot(fp)),
    );
    const freed = predicted.reduce((sum, fp) => sum + this.#bytesOf(fp), 0);
    expect(result.freedBytes).toBe(freed);
    // (6) the total is the sum of the sizes of the complete entries that remain.
    expect(result.totalBytes).toBe(this.model.total());
    const after = this.completeOnDisk();
    const removed = [...before.keys()].filter((fp) => !after.has(fp));
    expect(removed.sort()).toEqual([...predicted].sort());
    this.expectLruRemoval(before, removed, after, now);
  }

  /** reopen: close the long-lived object and open it again, which removes debris older than the limit. */
  async reopen(staleAfterMs: number): Promise<void> {
    this.trace.push(`reopen(staleAfterMs ${staleAfterMs})`);
    await this.cache.close();
    const now = Date.now();
    this.#cache = await this.#open(staleAfterMs);
    this.model.open(staleAfterMs, now);
  }

  #bytesOf(fp: string): number {
    return summaryOf(SOURCES[this.#source(fp)] as Spec).bytes;
  }

  /**
   * Invariants (2)–(4) of one pass, from what the disk held before and after it, independent of the model:
   * only entries older than minAgeMs go, oldest first, and only protected entries keep the total over the cap.
   */
  expectLruRemoval(
    before: Map<string, number>,
    removed: string[],
    after: Map<string, number>,
    now: number,
  ): void {
    const isProtected = (mtimeMs: number) => now - mtimeMs < MIN_AGE_MS;
    for (const fp of removed) {
      // (3) an entry used within minAgeMs is never removed.
      expect(isProtected(before.get(fp) as number), `removed ${fp}, used within minAgeMs`).toBe(false);
    }
    const keptOld = [...after].filter(([fp]) => before.has(fp)).map(([fp]) => before.get(fp) as number);
    const keptUnprotected = keptOld.filter((mtimeMs) => !isProtected(mtimeMs));
    if (removed.length > 0 && keptUnprotected.length > 0) {
      // (4) no removed entry is younger than a kept unprotected one.
      const newestRemoved = Math.max(...removed.map((fp) => before.get(fp) as number));
      expect(newestRemoved, "removed an entry younger than one it kept").toBeLessThanOrEqual(
        Math.min(...keptUnprotected),
      );
    }
    // (2) over the cap only when every remaining entry is protected.
    const total = [...after.keys()].reduce((sum, fp) => sum + this.#bytesOf(fp), 0);
    if (total > MAX_BYTES) {
      for (const [fp, mtimeMs] of after) {
        expect(isProtected(mtimeMs), `${fp} is unprotected yet the cache stays over the cap`).toBe(true);
      }
    }
  }

  /** A slot holds its sentinel, which records the copy, and exactly its source's tree. */
  expectComplete(fp: string): void {
    const slot = this.slot(fp);
    const spec = SOURCES[this.#source(fp)] as Spec;
    expect(JSON.parse(readFileSync(join(slot, STAGE_COMPLETE_SENTINEL), "utf8"))).toEqual({
      version: 1,
      ...summaryOf(spec),
    });
    expect(readTree(slot, { withModes: true, skipSentinel: true })).toEqual(this.#trees[this.#source(fp)]);
  }

  /** Complete slots on disk (slot holding the sentinel), fingerprint → mtime. */
  completeOnDisk(): Map<string, number> {
    const out = new Map<string, number>();
    for (const fp of FPS) {
      const slot = this.slot(fp);
      const sentinel = join(slot, STAGE_COMPLETE_SENTINEL);
      if (existsSync(sentinel)) out.set(fp, lstatSync(sentinel).mtimeMs);
    }
    return out;
  }

  /** The whole root against the model, after every step. */
  checkDisk(): void {
    const fanOuts: string[] = [];
    const slots: string[] = [];
    const foreign: string[] = [];
    for (const dirent of readdirSync(this.root, { withFileTypes: true })) {
      if (PRIVATE_DIRS.includes(dirent.name)) {
        expect(dirent.isDirectory()).toBe(true);
        continue;
      }
      expect(dirent.isDirectory() && FAN_OUT_NAME.test(dirent.name), `stray ${dirent.name} in the root`).toBe(
        true,
      );
      fanOuts.push(dirent.name);
      for (const child of readdirSync(join(this.root, dirent.name), { withFileTypes: true })) {
        // (7) a fan-out directory holds only slots: directories named by a fingerprint starting with its name.
        expect(
          child.isDirectory() && FPS.includes(child.name) && child.name.slice(0, 2) === dirent.name,
          `non-slot ${dirent.name}/${child.name}`,
        ).toBe(true);
        // (1) every slot holding the sentinel holds exactly its source's tree; this package's writers never
        // leave a slot without one, so the only such slots are the foreign ones the test made.
        if (existsSync(join(this.root, dirent.name, child.name, STAGE_COMPLETE_SENTINEL))) {
          this.expectComplete(child.name);
          slots.push(child.name);
        } else {
          expect(this.model.foreign.has(child.name), `incomplete slot ${child.name}`).toBe(true);
          foreign.push(child.name);
        }
      }
    }
    expect(slots.sort(), "complete entries").toEqual([...this.model.entries.keys()].sort());
    expect(foreign.sort(), "foreign incomplete slots").toEqual([...this.model.foreign].sort());
    expect(fanOuts.sort(), "fan-out directories").toEqual([...this.model.fanOuts].sort());

    // (7) debris lives only in private directories, which no fan-out name matches, under debris names.
    const staging = readdirSync(join(this.root, ".staging"));
    for (const name of staging) expect(TEMP_NAME.exec(name)?.[1], `stage temp ${name}`).toBeOneOf(FPS);
    expect(staging.sort(), "stage temps").toEqual([...this.model.staging.keys()].sort());
    const trash = readdirSync(join(this.root, ".trash"));
    for (const name of trash) expect(TRASH_NAME.exec(name)?.[1], `trash ${name}`).toBeOneOf(FPS);
    expect(trash.sort(), "trash").toEqual([...this.model.trash.keys()].sort());
    expect(readdirSync(join(this.root, ".scratch"))).toEqual([]);
    expect(this.warnings).toEqual(this.expectedWarnings);
  }
}

function filesUnder(dir: string, rel = ""): string[] {
  const out: string[] = [];
  for (const dirent of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const childRel = rel ? `${rel}/${dirent.name}` : dirent.name;
    if (dirent.isDirectory()) out.push(...filesUnder(dir, childRel));
    else out.push(childRel);
  }
  return out.sort();
}

const seeds = Array.from({ length: SEQUENCES }, (_, i) => (BASE_SEED + i) >>> 0);

describe("eviction against a model, over random operation sequences", () => {
  it("names the private directories so that no fan-out directory can be one", () => {
    for (const name of PRIVATE_DIRS) expect(FAN_OUT_NAME.test(name)).toBe(false);
    for (const fp of FPS) expect(FAN_OUT_NAME.test(fp.slice(0, 2))).toBe(true);
  });

  it.each(seeds)("keeps the disk equal to the model and sweeps in LRU order (CAS_SEED=%i)", async (seed) => {
    const sequence = new Sequence(seed);
    const run = async (label: string, action: () => Promise<void> | void) => {
      try {
        await action();
        sequence.checkDisk();
      } catch (error) {
        const header = `CAS_SEED=${seed}, ${label}; operations so far:\n  ${sequence.trace.join("\n  ")}\n`;
        if (error instanceof Error) error.message = `${header}${error.message}`;
        throw error;
      }
    };
    await run("open", () => sequence.start());
    try {
      for (let i = 0; i < STEPS; i++) await run(`step ${i}`, () => sequence.step());
      // (5) after any sequence, every fingerprint stages to a complete, correct tree.
      for (const fp of FPS) await run(`final get(${fp})`, () => sequence.stage(fp, "get"));
    } finally {
      await sequence.finish();
    }
  });
});
