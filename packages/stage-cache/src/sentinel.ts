import { createHash } from "node:crypto";
import { open, readFile } from "node:fs/promises";
import {
  formatManifest,
  type ManifestEntry,
  parseManifest,
  TREE_DIGEST_FORMAT,
  treeDigest,
} from "./manifest.js";

/**
 * What a copy wrote, as its sentinel records it: the number of regular files, the sum of their sizes, the
 * manifest (every directory and file, in path order) and its `cas-stage-tree-v2` digest, which equals
 * `fingerprintTree` of the source at the time of the copy.
 */
export interface CopyRecord {
  files: number;
  bytes: number;
  entries: readonly ManifestEntry[];
  digest: string;
}

/**
 * The first line of a sentinel: small JSON, so eviction reads a slot's size without reading the manifest
 * that follows. `manifest` is the sha256 (hex) of everything after this line.
 */
export interface SentinelHeader {
  version: 2;
  files: number;
  bytes: number;
  format: typeof TREE_DIGEST_FORMAT;
  digest: string;
  manifest: string;
}

/** A header line is never longer than this; eviction reads only this much. */
const HEADER_LIMIT = 4096;

/**
 * The text of a slot's sentinel: the header line, then the manifest (see `formatManifest`).
 *
 * ```
 * {"version":2,"files":2,"bytes":12,"format":"cas-stage-tree-v2","digest":"3f1c…","manifest":"9a0b…"}
 * d src
 * f 0644 5 2c26…  src/a.txt
 * f 0755 7 8d4e…  run.sh
 * ```
 */
export function sentinelText(record: CopyRecord): string {
  const body = formatManifest(record.entries);
  const header: SentinelHeader = {
    version: 2,
    files: record.files,
    bytes: record.bytes,
    format: TREE_DIGEST_FORMAT,
    digest: record.digest,
    manifest: sha256Hex(body),
  };
  return `${JSON.stringify(header)}\n${body}`;
}

/**
 * The parsed first line of the sentinel at `path`, reading at most 4 KiB: an object for a sentinel of this
 * package (of any version: version 1 held only `{version, files, bytes}`), null when the first line is not
 * JSON (a foreign writer's marker). Throws the filesystem's error when the file cannot be read.
 */
export async function readSentinelHeader(path: string): Promise<Record<string, unknown> | null> {
  const handle = await open(path, "r");
  let text: string;
  try {
    const buffer = Buffer.alloc(HEADER_LIMIT);
    const { bytesRead } = await handle.read(buffer, 0, HEADER_LIMIT, 0);
    text = buffer.toString("utf8", 0, bytesRead);
  } finally {
    await handle.close();
  }
  return parseHeader(text.split("\n", 1)[0] as string);
}

/** Why a recorded manifest cannot be used. */
export class ManifestError extends Error {}

/**
 * The manifest recorded in the sentinel at `path`, checked against its header: the body's sha256 and the
 * digest recomputed from the entries must both match. Throws {@link ManifestError} for a sentinel without a
 * manifest (an older version, a foreign writer) or a damaged one; the filesystem's error when it cannot be
 * read.
 */
export async function readRecordedManifest(
  path: string,
): Promise<{ header: SentinelHeader; entries: ManifestEntry[] }> {
  const text = await readFile(path, "utf8");
  const newline = text.indexOf("\n");
  const header = parseHeader(newline < 0 ? text : text.slice(0, newline));
  if (header?.version !== 2 || header.format !== TREE_DIGEST_FORMAT || typeof header.manifest !== "string") {
    throw new ManifestError(
      "the sentinel records no manifest (written by an older version or another writer)",
    );
  }
  const body = text.slice(newline + 1);
  if (sha256Hex(body) !== header.manifest) throw new ManifestError("the recorded manifest is damaged");
  let entries: ManifestEntry[];
  try {
    entries = parseManifest(body);
  } catch (error) {
    throw new ManifestError(`the recorded manifest is damaged: ${(error as Error).message}`);
  }
  if (treeDigest(entries) !== header.digest) {
    throw new ManifestError("the recorded manifest does not match its digest");
  }
  return { header: header as unknown as SentinelHeader, entries };
}

function parseHeader(line: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
