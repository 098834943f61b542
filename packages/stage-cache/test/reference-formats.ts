// The documented digest formats, spelled out a second time, independently of src/, so that a test can
// tell an implementation that drifted from its documentation.
import { createHash } from "node:crypto";

/** `cas-stage-content-v2` (see src/content-hash.ts). */
export function referenceContentHash(bytes: Buffer): Buffer {
  const parts: Buffer[] = [Buffer.from("cas-stage-content-v2\0")];
  for (let offset = 0; offset < bytes.length; offset += 65536) {
    const chunk = bytes.subarray(offset, offset + 65536);
    parts.push(
      chunk.every((byte) => byte === 0) ? Buffer.from([0]) : Buffer.concat([Buffer.from([1]), chunk]),
    );
  }
  const size = Buffer.alloc(8);
  size.writeBigUInt64BE(BigInt(bytes.length));
  parts.push(size);
  return createHash("sha256").update(Buffer.concat(parts)).digest();
}

export type ReferenceEntry =
  | { rel: Buffer; dir: true }
  | { rel: Buffer; content: Buffer; executable: boolean };

/** `cas-stage-tree-v2` (see src/manifest.ts): records sorted by the bytes of their paths. */
export function referenceTreeDigest(entries: ReferenceEntry[]): string {
  const sorted = [...entries].sort((a, b) => Buffer.compare(a.rel, b.rel));
  const parts: Buffer[] = [Buffer.from("cas-stage-tree-v2\0")];
  for (const entry of sorted) {
    if ("dir" in entry) {
      parts.push(Buffer.from("d "), entry.rel, Buffer.from("\0"));
    } else {
      const flag = entry.executable ? "x" : "-";
      parts.push(Buffer.from(`f ${flag} ${entry.content.length} `), entry.rel, Buffer.from("\0"));
      parts.push(referenceContentHash(entry.content));
    }
  }
  return createHash("sha256").update(Buffer.concat(parts)).digest("hex");
}
