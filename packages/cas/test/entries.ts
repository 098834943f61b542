import { lstat, mkdir, readdir, readFile, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { EntryStore, type EntryStoreOptions } from "../src/index.js";
import { tempDir } from "./fixtures.js";

/** Marker names as a caller would choose them: both in the slot's top directory. */
export const SENTINEL = ".complete";
export const CLAIM = ".claimed";
/** Files per entry tree; each file's content names its entry, so a mixed or partial tree is detectable. */
export const FILES = 6;

/** An entry store on a fresh temp root, with every warning it gives recorded. */
export interface TestCache {
  root: string;
  store: EntryStore;
  warnings: Array<{ message: string; path: string }>;
  /** The slot path of entry `name`: `<root>/<fan-out>/<name>`, the fan-out being its first two letters. */
  slot: (name: string) => string;
}

export async function makeCache(
  options: Partial<EntryStoreOptions> & { root?: string } = {},
): Promise<TestCache> {
  const root = options.root ?? (await tempDir());
  const warnings: TestCache["warnings"] = [];
  const store = new EntryStore({
    stagingDir: join(root, ".staging"),
    trashDir: join(root, ".trash"),
    sentinel: SENTINEL,
    claim: CLAIM,
    onWarning: (message, path) => warnings.push({ message, path }),
    ...options,
  });
  await store.prepare();
  return { root, store, warnings, slot: (name) => slotPath(root, name) };
}

export function slotPath(root: string, name: string): string {
  return join(root, name.slice(0, 2), name);
}

export function fileContent(name: string, i: number): string {
  return `${name}:${i}\n`.repeat(32);
}

export function sentinelContent(name: string): string {
  return `built ${name}\n`;
}

/** Writes entry `name`'s tree into `dir` and returns its sentinel content, as a `publish` build does. */
export async function writeEntryTree(dir: string, name: string): Promise<string> {
  await mkdir(join(dir, "d"), { recursive: true });
  for (let i = 0; i < FILES; i++) await writeFile(join(dir, "d", `f${i}`), fileContent(name, i));
  return sentinelContent(name);
}

/** Publishes entry `name` through the store, as a caller would. */
export function publishEntry(cache: TestCache, name: string) {
  return cache.store.publish(cache.slot(name), { build: (staging) => writeEntryTree(staging, name) });
}

/**
 * What is wrong with the tree at `dir` as entry `name` (missing, extra or wrong files), or "whole". The
 * markers (sentinel, claim) are not part of the tree and are ignored.
 */
export async function treeProblem(dir: string, name: string): Promise<string> {
  let names: string[];
  try {
    names = (await readdir(join(dir, "d"))).sort();
  } catch (error) {
    return `cannot list ${dir}/d: ${(error as NodeJS.ErrnoException).code}`;
  }
  const expected = Array.from({ length: FILES }, (_, i) => `f${i}`).sort();
  if (names.join() !== expected.join()) return `files ${names.join()} instead of ${expected.join()}`;
  for (let i = 0; i < FILES; i++) {
    const content = await readFile(join(dir, "d", `f${i}`), "utf8").catch(() => undefined);
    if (content !== fileContent(name, i)) return `d/f${i} differs`;
  }
  const top = (await readdir(dir)).filter((n) => n !== SENTINEL && n !== CLAIM).sort();
  if (top.join() !== "d") return `top level holds ${top.join()}`;
  return "whole";
}

/** The marker files present in the slot: which of the sentinel and the claim. */
export async function markers(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of [SENTINEL, CLAIM]) {
    if ((await lstat(join(dir, name)).catch(() => undefined))?.isFile()) found.push(name);
  }
  return found;
}

/** Sets the sentinel's mtime (an entry's last use) to `ms` since the epoch and returns it as lstat reads it. */
export async function setLastUsed(slot: string, ms: number, marker = SENTINEL): Promise<number> {
  const path = join(slot, marker);
  await utimes(path, new Date(ms), new Date(ms));
  return (await lstat(path)).mtimeMs;
}

export async function lastUsed(slot: string, marker = SENTINEL): Promise<number> {
  return (await lstat(join(slot, marker))).mtimeMs;
}

/** Names in a directory, or [] when it does not exist. */
export async function namesIn(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).sort();
}

/**
 * A point a hook stops at until the test lets it go: `reached` resolves when the hook is entered, `release`
 * lets it continue. Used to hold one side of a race exactly inside its window.
 */
export interface Gate {
  hook: () => Promise<void>;
  reached: Promise<void>;
  release: () => void;
  times: number;
}

export function gate(): Gate {
  let signalReached = () => {};
  let release = () => {};
  const reached = new Promise<void>((resolve) => {
    signalReached = resolve;
  });
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const result: Gate = {
    reached,
    release,
    times: 0,
    hook: async () => {
      result.times++;
      signalReached();
      await released;
    },
  };
  return result;
}

/** An mtime long ago, as listed by an eviction pass; far from any real touch. */
export const LONG_AGO = Date.UTC(2001, 0, 1);
