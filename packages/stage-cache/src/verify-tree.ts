import { closeSync } from "node:fs";
import { join } from "node:path";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import {
  type BytePath,
  bytePathOfText,
  compareBytePaths,
  displayPath,
  joinPath,
  ROOT_REL,
} from "./byte-path.js";
import { codeOf, messageOf, StageCacheError } from "./errors.js";
import { ContentPass, type FileContent, runPass } from "./file-content.js";
import { EVICTION_CLAIM, STAGE_COMPLETE_SENTINEL } from "./layout.js";
import type { ManifestEntry } from "./manifest.js";
import { ManifestError, readRecordedManifest } from "./sentinel.js";
import { type ListedEntry, type TreeDir, type TreeReader, treeReader } from "./tree-reader.js";
import { TreeFile } from "./walk.js";

/** How a slot differs from what its writer recorded. */
export type SlotProblem = "missing" | "extra" | "type" | "size" | "content" | "mode" | "manifest";

/**
 * The outcome of {@link verifySlot}: the slot holds exactly what was recorded, or the first difference, in
 * the byte order of paths. `path` is relative to the slot (the sentinel's name for a `manifest` problem);
 * `expected` and `found` say what the record holds and what the slot holds, for people.
 */
export type SlotVerification =
  | { ok: true; files: number; bytes: number; digest: string }
  | { ok: false; path: string; problem: SlotProblem; expected: string; found: string };

/** What the slot holds at one path. */
type Found =
  | { kind: "dir"; rel: BytePath }
  | { kind: "file"; rel: BytePath; mode: number; size: number; hash: string }
  | { kind: "other"; rel: BytePath; what: string };

const SLICE_MS = 8;
const PRIVATE_NAMES: readonly string[] = [STAGE_COMPLETE_SENTINEL, EVICTION_CLAIM];

/**
 * Re-reads the slot directory `slot` and compares it with the manifest its sentinel records (see
 * `sentinel.ts`): the same directories and files, nothing else (the sentinel, or the claim an evictor
 * renamed it to, aside), and for each file the same size, content hash and permission bits. Every file is
 * read once, through descriptors, like a copy's source; symlinks and special files count as differences
 * and are never followed or opened. Reads only; changes nothing.
 *
 * Resolves to `{ ok: true, … }` with the recorded totals and digest, or to the first differing path with
 * the kind of problem: `missing` (recorded, not in the slot), `extra` (in the slot, not recorded), `type`
 * (a file where a directory was, a symlink…), `size`, `content`, `mode`; `manifest` when the sentinel
 * records no manifest (an older version or another writer) or a damaged one.
 *
 * Throws {@link StageCacheError} with the filesystem's code when the sentinel or a part of the slot cannot
 * be read (ENOENT when the slot or its sentinel is gone); `signal.reason` on abort.
 */
export async function verifySlot(
  slot: string,
  options: { signal?: AbortSignal } = {},
): Promise<SlotVerification> {
  let recorded: Awaited<ReturnType<typeof readRecordedManifest>>;
  try {
    recorded = await readRecordedManifest(join(slot, STAGE_COMPLETE_SENTINEL));
  } catch (error) {
    if (!(error instanceof ManifestError))
      throw readError(bytePathOfText(join(slot, STAGE_COMPLETE_SENTINEL)), error);
    return {
      ok: false,
      path: STAGE_COMPLETE_SENTINEL,
      problem: "manifest",
      expected: "a manifest",
      found: error.message,
    };
  }
  const found = await readSlot(slot, options.signal);
  const difference = firstDifference(recorded.entries, found);
  if (difference) return difference;
  const { files, bytes, digest } = recorded.header;
  return { ok: true, files, bytes, digest };
}

/** Every entry of the slot, sorted by path, each file hashed. */
async function readSlot(slot: string, signal: AbortSignal | undefined): Promise<Found[]> {
  const reader = treeReader();
  let root: TreeDir;
  try {
    root = reader.openRoot(slot);
  } catch (cause) {
    throw readError(bytePathOfText(slot), cause);
  }
  const found: Found[] = [];
  let sliceStart = performance.now();
  const pace = async () => {
    signal?.throwIfAborted();
    if (performance.now() - sliceStart < SLICE_MS) return;
    await yieldToLoop();
    sliceStart = performance.now();
  };
  const directory = async (dir: TreeDir, rel: BytePath): Promise<void> => {
    for (const entry of listOrThrow(reader, dir)) {
      await pace();
      const childRel = joinPath(rel, entry.name);
      if (rel.length === 0 && PRIVATE_NAMES.includes(entry.name)) continue;
      const special = specialKind(entry);
      if (special) {
        found.push({ kind: "other", rel: childRel, what: special });
        continue;
      }
      const path = joinPath(dir.path, entry.name);
      const opened = (() => {
        try {
          return reader.open(dir, entry.name, entry.isDirectory());
        } catch (cause) {
          throw readError(path, cause);
        }
      })();
      if (opened.kind === "dir") {
        found.push({ kind: "dir", rel: childRel });
        try {
          await directory(opened.dir, childRel);
        } finally {
          reader.close(opened.dir);
        }
      } else if (opened.kind === "file") {
        const content = await hashOpened(new TreeFile(childRel, opened.fd, opened.stats, path), signal);
        found.push({ kind: "file", rel: childRel, mode: opened.stats.mode & 0o7777, ...content });
      } else {
        found.push({
          kind: "other",
          rel: childRel,
          what: opened.kind === "symlink" ? "a symlink" : "a special file",
        });
      }
    }
  };
  try {
    await directory(root, ROOT_REL);
  } finally {
    reader.close(root);
  }
  return found.sort((a, b) => compareBytePaths(a.rel, b.rel));
}

function listOrThrow(reader: TreeReader, dir: TreeDir): ListedEntry[] {
  try {
    return reader.list(dir);
  } catch (cause) {
    throw readError(dir.path, cause);
  }
}

function specialKind(entry: ListedEntry): string | undefined {
  if (entry.isSymbolicLink()) return "a symlink";
  if (entry.isFile() || entry.isDirectory()) return undefined;
  return "a special file";
}

function hashOpened(file: TreeFile, signal: AbortSignal | undefined): Promise<FileContent> {
  return new Promise((resolve, reject) => {
    const pass = new ContentPass(file, "verify");
    runPass(pass, signal, (error) => {
      closeSync(file.fd);
      if (error !== undefined) reject(error);
      else resolve(pass.result());
    });
  });
}

/** The first path, in byte order, where the slot and its record (both sorted by path) disagree. */
function firstDifference(
  recorded: readonly ManifestEntry[],
  found: readonly Found[],
): Extract<SlotVerification, { ok: false }> | undefined {
  let r = 0;
  let f = 0;
  while (r < recorded.length || f < found.length) {
    const want = recorded[r];
    const have = found[f];
    const order = want && have ? compareBytePaths(want.rel, have.rel) : want ? -1 : 1;
    if (order < 0 && want) return difference(want.rel, "missing", describe(want), "nothing");
    if (order > 0 && have) return difference(have.rel, "extra", "nothing", describe(have));
    if (!want || !have) break;
    if (want.kind !== have.kind) return difference(want.rel, "type", describe(want), describe(have));
    if (want.kind === "file" && have.kind === "file") {
      if (want.size !== have.size)
        return difference(want.rel, "size", `${want.size} bytes`, `${have.size} bytes`);
      if (want.hash !== have.hash) return difference(want.rel, "content", want.hash, have.hash);
      if (want.mode !== have.mode) return difference(want.rel, "mode", octal(want.mode), octal(have.mode));
    }
    r++;
    f++;
  }
  return undefined;
}

function difference(rel: BytePath, problem: SlotProblem, expected: string, found: string) {
  return { ok: false as const, path: displayPath(rel), problem, expected, found };
}

function describe(entry: ManifestEntry | Found): string {
  if (entry.kind === "dir") return "a directory";
  if (entry.kind === "file") return "a file";
  return entry.what;
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, "0");
}

function readError(path: BytePath, cause: unknown): StageCacheError {
  if (cause instanceof StageCacheError) return cause;
  const shown = displayPath(path);
  return new StageCacheError(codeOf(cause) ?? "EIO", `cannot verify ${shown}: ${messageOf(cause)}`, {
    path: shown,
    cause,
  });
}
