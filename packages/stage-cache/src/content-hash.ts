import { createHash, type Hash, hash as hashOnce } from "node:crypto";

/**
 * The content hash of a file, format `cas-stage-content-v2`: sha256 over
 *
 * ```
 * "cas-stage-content-v2\0"
 * for each chunk of CONTENT_CHUNK (64 KiB) bytes, in order (the last one may be shorter):
 *   0x00                     when every byte of the chunk is zero
 *   0x01 <the chunk's bytes> otherwise
 * the file's size in bytes, as an unsigned 64-bit big-endian integer
 * ```
 *
 * Every chunk but the last has the full length, so the size fixes where each chunk starts and the encoding
 * is unambiguous. An all-zero chunk costs a comparison instead of hashing: a sparse file of gigabytes
 * hashes at the speed its holes can be read, and a hole and written zeros give the same hash.
 */
export const CONTENT_HASH_FORMAT = "cas-stage-content-v2";

/** Bytes per chunk of the content hash, and the granularity at which a copy keeps holes. */
export const CONTENT_CHUNK = 64 * 1024;

const PREFIX = Buffer.from(`${CONTENT_HASH_FORMAT}\0`);
const ZERO_CHUNK = Buffer.from([0]);
const DATA_CHUNK = Buffer.from([1]);
const ZEROS = Buffer.alloc(CONTENT_CHUNK);

/** Whether every byte of `chunk` (at most {@link CONTENT_CHUNK} long) is zero. Stops at the first that is not. */
export function isAllZero(chunk: Buffer): boolean {
  return chunk.equals(chunk.length === CONTENT_CHUNK ? ZEROS : ZEROS.subarray(0, chunk.length));
}

/** The content hash of an empty file (no chunks at all). */
let emptyHash: string | undefined;
export function emptyContentHash(): string {
  emptyHash ??= new ContentHasher().digest();
  return emptyHash;
}

/** Computes a content hash from a file's chunks, fed in order. */
export class ContentHasher {
  readonly #hash: Hash = createHash("sha256").update(PREFIX);
  #size = 0;

  /**
   * Adds the next chunk: {@link CONTENT_CHUNK} bytes, or fewer for the last one. `zero` is whether it is all
   * zeros (the caller has usually checked already, to decide whether to write it).
   */
  addChunk(chunk: Buffer, zero: boolean): void {
    if (this.#size % CONTENT_CHUNK !== 0) throw new Error("content hash: a chunk after a short one");
    if (zero) {
      this.#hash.update(ZERO_CHUNK);
    } else {
      this.#hash.update(DATA_CHUNK);
      this.#hash.update(chunk);
    }
    this.#size += chunk.length;
  }

  /** Bytes added so far. */
  get size(): number {
    return this.#size;
  }

  /** The hash, as 64 lowercase hex digits. The hasher cannot be used afterwards. */
  digest(): string {
    const size = Buffer.alloc(8);
    size.writeBigUInt64BE(BigInt(this.#size));
    return this.#hash.update(size).digest("hex");
  }
}

/** The content hash of bytes held in memory, as 64 lowercase hex digits. */
export function contentHash(bytes: Buffer): string {
  const hasher = new ContentHasher();
  for (let offset = 0; offset < bytes.length; offset += CONTENT_CHUNK) {
    const chunk = bytes.subarray(offset, offset + CONTENT_CHUNK);
    hasher.addChunk(chunk, isAllZero(chunk));
  }
  return hasher.digest();
}

/**
 * A read buffer laid out so that a file of at most one chunk, read into {@link data}, is hashed in one call:
 * the format's prefix and the data tag sit right before the data, and the size is written right after it.
 * Saves a hash object and four updates per small file, which is most files.
 */
export class SingleChunkFrame {
  readonly #frame = Buffer.allocUnsafe(PREFIX.length + 1 + CONTENT_CHUNK + 8);
  /** Where the file's bytes go: {@link CONTENT_CHUNK} bytes of room. */
  readonly data = this.#frame.subarray(PREFIX.length + 1, PREFIX.length + 1 + CONTENT_CHUNK);

  constructor() {
    PREFIX.copy(this.#frame);
    this.#frame[PREFIX.length] = DATA_CHUNK[0] as number;
  }

  /**
   * The content hash (hex) of a file whose `length` bytes (at most one chunk) are in {@link data}: the
   * empty file's, a chunk of zeros', or computed in one call. Overwrites the 8 bytes after them.
   */
  hash(length: number): string {
    if (length === 0) return emptyContentHash();
    const data = this.data;
    // Most files start with a byte that is not zero: no need to compare the rest.
    if (data[0] === 0 && isAllZero(data.subarray(0, length))) {
      const hasher = new ContentHasher();
      hasher.addChunk(data.subarray(0, length), true);
      return hasher.digest();
    }
    const end = PREFIX.length + 1 + length;
    this.#frame.writeUInt32BE(Math.floor(length / 2 ** 32), end);
    this.#frame.writeUInt32BE(length >>> 0, end + 4);
    return hashOnce("sha256", this.#frame.subarray(0, end + 8));
  }
}
