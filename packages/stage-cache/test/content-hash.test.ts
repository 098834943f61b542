import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CONTENT_CHUNK, ContentHasher, contentHash, isAllZero } from "../src/content-hash.js";
import { referenceContentHash as reference } from "./reference-formats.js";

describe("the content hash (cas-stage-content-v2)", () => {
  it("follows the documented format at every chunk boundary, for data and for zeros", () => {
    expect(CONTENT_CHUNK).toBe(65536);
    for (const size of [0, 1, 65535, 65536, 65537, 3 * 65536 + 5]) {
      const data = randomBytes(size);
      expect(contentHash(data), `random ${size}`).toBe(reference(data).toString("hex"));
      const zeros = Buffer.alloc(size);
      expect(contentHash(zeros), `zeros ${size}`).toBe(reference(zeros).toString("hex"));
    }
  });

  it("takes a chunk with a single non-zero byte, first or last, as data", () => {
    for (const at of [0, 65535, 65536 + 100]) {
      const bytes = Buffer.alloc(2 * 65536);
      bytes[at] = 1;
      expect(contentHash(bytes)).toBe(reference(bytes).toString("hex"));
      expect(contentHash(bytes)).not.toBe(contentHash(Buffer.alloc(2 * 65536)));
    }
    const tail = Buffer.alloc(70_000);
    tail[69_999] = 7;
    expect(isAllZero(tail.subarray(65536))).toBe(false);
    expect(isAllZero(tail.subarray(0, 65536))).toBe(true);
    expect(isAllZero(Buffer.alloc(0))).toBe(true);
  });

  it("tells apart files of zeros that differ only in size", () => {
    const hashes = [0, 1, 65536, 65537].map((size) => contentHash(Buffer.alloc(size)));
    expect(new Set(hashes).size).toBe(4);
  });

  it("counts the bytes added and refuses a chunk after a short one", () => {
    const hasher = new ContentHasher();
    hasher.addChunk(Buffer.alloc(CONTENT_CHUNK, 1), false);
    hasher.addChunk(Buffer.alloc(10, 1), false);
    expect(hasher.size).toBe(CONTENT_CHUNK + 10);
    expect(() => hasher.addChunk(Buffer.alloc(10, 1), false)).toThrow(/a chunk after a short one/);
  });
});
