import { isUtf8 } from "node:buffer";
import { createHash } from "node:crypto";

/**
 * The list of what a tree holds: every directory, and every regular file with its permission bits, size
 * and content hash (see `content-hash.ts`). A copy records it as it writes; `fingerprintTree` computes
 * the same list from a source; `verifySlot` compares a slot with the list recorded for it.
 */
export type ManifestEntry =
  | { kind: "dir"; rel: Buffer }
  | { kind: "file"; rel: Buffer; mode: number; size: number; hash: Buffer };

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
  return entries.sort((a, b) => Buffer.compare(a.rel, b.rel));
}

/** The `cas-stage-tree-v2` digest of entries already in path order. */
export function treeDigest(sorted: readonly ManifestEntry[]): string {
  // The records are gathered and hashed in large updates: one update per field costs more than the hashing.
  const hash = createHash("sha256").update(TREE_PREFIX);
  const parts: Buffer[] = [];
  let gathered = 0;
  for (const entry of sorted) {
    const head =
      entry.kind === "dir" ? DIR_HEAD : Buffer.from(`f ${entry.mode & 0o100 ? "x" : "-"} ${entry.size} `);
    parts.push(head, entry.rel, NUL);
    gathered += head.length + entry.rel.length + 1;
    if (entry.kind === "file") {
      parts.push(entry.hash);
      gathered += entry.hash.length;
    }
    if (gathered >= 1 << 20) {
      hash.update(Buffer.concat(parts, gathered));
      parts.length = 0;
      gathered = 0;
    }
  }
  hash.update(Buffer.concat(parts, gathered));
  return hash.digest("hex");
}

const DIR_HEAD = Buffer.from("d ");
const NUL = Buffer.from([0]);

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
  const lines: string[] = [];
  for (const entry of sorted) {
    if (entry.kind === "dir") lines.push(`d ${escapePath(entry.rel)}\n`);
    else {
      const mode = entry.mode.toString(8).padStart(4, "0");
      lines.push(`f ${mode} ${entry.size} ${entry.hash.toString("hex")} ${escapePath(entry.rel)}\n`);
    }
  }
  return lines.join("");
}

const DIR_LINE = /^d (.+)$/;
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
        hash: Buffer.from(file[3] as string, "hex"),
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
export function escapePath(rel: Buffer): string {
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

/** The bytes {@link escapePath} wrote. */
export function unescapePath(text: string): Buffer {
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
  return Buffer.concat(parts);
}
