import { isUtf8 } from "node:buffer";
import { createHash } from "node:crypto";
import { type BytePath, bytePathOf, compareBytePaths, pathBytes } from "./byte-path.js";

/**
 * The list of what a tree holds: every directory, and every regular file with its permission bits, size
 * and content hash (see `content-hash.ts`). A copy records it as it writes; `fingerprintTree` computes
 * the same list from a source; `verifySlot` compares a slot with the list recorded for it.
 */
export type ManifestEntry =
  | { kind: "dir"; rel: BytePath }
  | { kind: "file"; rel: BytePath; mode: number; size: number /** 64 lowercase hex digits */; hash: string };

/**
 * The digest of a tree, format `cas-stage-tree-v2`: lowercase hex sha256 over
 *
 * ```
 * "cas-stage-tree-v2\0"
 * for each entry, in the byte order of its path:
 *   directory: "d " <path> "\0"
 *   file:      "f " ("x" when executable by its owner, else "-") " " <size in decimal> " " <path> "\0"
 *              <its 32-byte content hash (cas-stage-content-v2)>
 * ```
 *
 * Paths are the raw bytes of the names joined with "/", relative to the tree's root, so names that are not
 * UTF-8 count like any other. Not covered: mtimes, owners, permission bits other than the owner's
 * executable bit, and the root's own path.
 */
export const TREE_DIGEST_FORMAT = "cas-stage-tree-v2";

const TREE_PREFIX = Buffer.from(`${TREE_DIGEST_FORMAT}\0`);

/** Sorts entries in place by the bytes of their paths, the order the digest and the manifest text use. */
export function sortEntries(entries: ManifestEntry[]): ManifestEntry[] {
  return entries.sort((a, b) => compareBytePaths(a.rel, b.rel));
}

/** Records are gathered into a buffer of about this size, then hashed: one update per field costs more. */
const DIGEST_BATCH_BYTES = 1 << 20;

/** The `cas-stage-tree-v2` digest of entries already in path order. */
export function treeDigest(sorted: readonly ManifestEntry[]): string {
  const hash = createHash("sha256").update(TREE_PREFIX);
  // Each record is written as one string of bytes (its head and path, then its hash as hex, which `write`
  // turns into the 32 bytes): two writes per record, no object per record.
  let batch = Buffer.allocUnsafe(DIGEST_BATCH_BYTES);
  let used = 0;
  for (const entry of sorted) {
    const record =
      entry.kind === "dir"
        ? `d ${entry.rel}\0`
        : `f ${entry.mode & 0o100 ? "x" : "-"} ${entry.size} ${entry.rel}\0`;
    const needed = record.length + (entry.kind === "file" ? 32 : 0);
    if (used + needed > batch.length) {
      hash.update(batch.subarray(0, used));
      used = 0;
      if (needed > batch.length) batch = Buffer.allocUnsafe(needed);
    }
    used += batch.write(record, used, "latin1");
    if (entry.kind === "file") used += batch.write(entry.hash, used, "hex");
  }
  hash.update(batch.subarray(0, used));
  return hash.digest("hex");
}

/**
 * The manifest as text, one line per entry in path order:
 *
 * ```
 * d <path>
 * f <mode, octal> <size> <content hash, hex> <path>
 * ```
 *
 * The path comes last and is escaped (see {@link escapePath}), so a line never holds a newline.
 */
export function formatManifest(sorted: readonly ManifestEntry[]): string {
  let text = "";
  for (const entry of sorted) {
    if (entry.kind === "dir") text += `d ${escapePath(entry.rel)}\n`;
    else text += `f ${octalMode(entry.mode)} ${entry.size} ${entry.hash} ${escapePath(entry.rel)}\n`;
  }
  return text;
}

/** Four octal digits; the common modes without formatting. */
function octalMode(mode: number): string {
  return mode === 0o644 ? "0644" : mode === 0o755 ? "0755" : mode.toString(8).padStart(4, "0");
}

const DIR_LINE = /^d (.+)$/;
/** A path of printable ASCII but `%` is its own text. */
const PLAIN = /^[\x20-\x24\x26-\x7e]*$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what must be escaped.
const NEEDS_ESCAPE = /[\x00-\x1f%\x7f]/;
const FILE_LINE = /^f ([0-7]{4}) (0|[1-9][0-9]{0,15}) ([0-9a-f]{64}) (.+)$/;

/** Parses {@link formatManifest}'s text. Throws a SyntaxError naming the first line that is not an entry. */
export function parseManifest(text: string): ManifestEntry[] {
  const entries: ManifestEntry[] = [];
  const lines = text.split("\n");
  if (lines.pop() !== "") throw new SyntaxError("manifest: the last line is not terminated");
  for (const [index, line] of lines.entries()) {
    const file = FILE_LINE.exec(line);
    const dir = file ? null : DIR_LINE.exec(line);
    if (file) {
      entries.push({
        kind: "file",
        mode: Number.parseInt(file[1] as string, 8),
        size: Number(file[2]),
        hash: file[3] as string,
        rel: unescapePath(file[4] as string),
      });
    } else if (dir) {
      entries.push({ kind: "dir", rel: unescapePath(dir[1] as string) });
    } else {
      throw new SyntaxError(
        `manifest: line ${index + 1} is not an entry: ${JSON.stringify(line.slice(0, 80))}`,
      );
    }
  }
  return entries;
}

/**
 * A path as manifest text: UTF-8 as it is, except that `%`, control characters and DEL are written `%XX`;
 * a path that is not valid UTF-8 has every byte from 0x80 up written `%XX` as well. Reversible
 * ({@link unescapePath}), never holds a newline, and stays readable for ordinary names.
 */
export function escapePath(path: BytePath): string {
  if (PLAIN.test(path)) return path;
  const rel = pathBytes(path);
  const utf8 = isUtf8(rel);
  if (utf8) {
    const text = rel.toString("utf8");
    if (!NEEDS_ESCAPE.test(text)) return text;
  }
  let out = "";
  let plainStart = 0;
  for (let index = 0; index < rel.length; index++) {
    const byte = rel[index] as number;
    if (byte >= 0x20 && byte !== 0x25 && byte !== 0x7f && (utf8 || byte < 0x80)) continue;
    out += `${rel.toString("utf8", plainStart, index)}%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
    plainStart = index + 1;
  }
  return out + rel.toString("utf8", plainStart);
}

/** The path {@link escapePath} wrote. */
export function unescapePath(text: string): BytePath {
  const parts: Buffer[] = [];
  let plainStart = 0;
  for (let index = text.indexOf("%"); index >= 0; index = text.indexOf("%", plainStart)) {
    const hex = text.slice(index + 1, index + 3);
    if (!/^[0-9A-F]{2}$/.test(hex))
      throw new SyntaxError(`manifest: bad escape in path ${JSON.stringify(text)}`);
    parts.push(Buffer.from(text.slice(plainStart, index)), Buffer.from([Number.parseInt(hex, 16)]));
    plainStart = index + 3;
  }
  parts.push(Buffer.from(text.slice(plainStart)));
  return bytePathOf(Buffer.concat(parts));
}
