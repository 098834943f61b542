import { readSync } from "node:fs";
import type { BytePath } from "./byte-path.js";
import { CONTENT_CHUNK, ContentHasher, isAllZero, SingleChunkFrame } from "./content-hash.js";
import { DirectReader } from "./direct-read.js";
import { sourceError } from "./fs-errors.js";

/** Bytes read per step: a whole number of content chunks, so that each step hashes whole chunks. */
export const STEP_BYTES = 16 * CONTENT_CHUNK;
/** A pass over a large file gives the event loop a turn this often. */
const SLICE_MS = 8;

/** Whether a file has fewer blocks allocated than its size needs: it has holes, which its copy keeps. */
export function hasHoles(stats: { size: number; blocks: number }): boolean {
  return stats.blocks * 512 < stats.size;
}

/** Below this size a file with holes is read like any other: the page-cache cost of its holes is small. */
const DIRECT_READ_MIN_BYTES = 4 * 1024 * 1024;

/**
 * An open source file, as much of it as reading and copying need. The walk's `TreeFile` is one; a copy
 * worker gets one in a message.
 */
export interface SourceFile {
  /** Read from here and nowhere else. */
  readonly fd: number;
  readonly stats: { readonly size: number; readonly blocks: number; readonly mode: number };
  /** For messages. */
  readonly path: BytePath;
}

/** Where a file's bytes go besides the hash (the copy being written). */
export interface ChunkSink {
  /** `piece`, read at `position`; `zeroChunks[i]` says whether its i-th content chunk is all zeros. */
  write(piece: Buffer, position: number, zeroChunks: readonly boolean[]): void;
}

/** What a pass read: the number of bytes and their content hash (64 lowercase hex digits). */
export interface FileContent {
  size: number;
  hash: string;
}

let sharedBuffer: Buffer | undefined;
let sharedFrame: SingleChunkFrame | undefined;
/** Which chunks of the current piece are all zeros: filled by each step, read by its sink at once. */
const sharedZeroChunks: boolean[] = [];

/**
 * The read buffers of every pass on this thread. Sharing them is safe because a step reads, hashes and
 * hands on its piece synchronously, and passes interleave only between steps.
 */
function stepBuffer(): Buffer {
  sharedBuffer ??= Buffer.allocUnsafe(STEP_BYTES);
  return sharedBuffer;
}

function singleChunkFrame(): SingleChunkFrame {
  sharedFrame ??= new SingleChunkFrame();
  return sharedFrame;
}

/**
 * Whether a file is read in one step: at most one content chunk and no holes. Most files of a source tree
 * are; they take {@link readSingleChunk} rather than a {@link ContentPass}.
 */
export function isSingleChunk(stats: SourceFile["stats"]): boolean {
  return stats.size <= CONTENT_CHUNK && !hasHoles(stats);
}

/**
 * Reads a file of at most one chunk from its descriptor (at most the size `fstat` gave) with one read into
 * a buffer shared by this thread, and hashes it with one call. The bytes stay in {@link singleChunkBytes}
 * until the next call on this thread, so the caller uses them at once, synchronously. Throws the
 * {@link sourceError} of a failed read.
 */
export function readSingleChunk(file: SourceFile, action: string): FileContent {
  const frame = singleChunkFrame();
  const size = readFully(file, action, frame.data, Math.min(file.stats.size, CONTENT_CHUNK), 0);
  return { size, hash: frame.hash(size) };
}

/** The shared buffer {@link readSingleChunk} reads into. */
export function singleChunkBytes(): Buffer {
  return singleChunkFrame().data;
}

/** Reads `length` bytes at `position` into `buffer` (buffered); fewer only at the end of the file. */
function readFully(
  file: SourceFile,
  action: string,
  buffer: Buffer,
  length: number,
  position: number,
): number {
  let filled = 0;
  try {
    while (filled < length) {
      const read = readSync(file.fd, buffer, filled, length - filled, position + filled);
      if (read === 0) break;
      filled += read;
    }
  } catch (cause) {
    throw sourceError(action, file.path, cause);
  }
  return filled;
}

/**
 * One pass over a file's content: read once, from the descriptor the walk opened (never by path), hashed
 * (see `content-hash.ts`), and handed to a sink. Reads at most the size `fstat` gave when the walk opened
 * the file; a file that shrank since ends where its data ends.
 */
export class ContentPass {
  readonly #file: SourceFile;
  readonly #action: string;
  readonly #sink: ChunkSink | undefined;
  /** Made on the first multi-chunk step: most files take the single-chunk path and need none. */
  #hasher: ContentHasher | undefined;
  readonly #direct: DirectReader | undefined;
  /** Set at once by the single-chunk path. */
  #hash: string | undefined;
  #singleSize = 0;

  /** Opens a second, direct descriptor for a large file with holes (see `DirectReader`): call {@link close}. */
  constructor(file: SourceFile, action: string, sink?: ChunkSink) {
    this.#file = file;
    this.#action = action;
    this.#sink = sink;
    const { stats } = file;
    this.#direct =
      stats.size >= DIRECT_READ_MIN_BYTES && hasHoles(stats) ? DirectReader.open(file.fd) : undefined;
  }

  /** Reads, hashes and hands on the next piece. True once the whole file has passed. */
  step(): boolean {
    if (this.#hash === undefined && this.#file.stats.size <= CONTENT_CHUNK && this.#direct === undefined) {
      return this.#singleChunk();
    }
    this.#hasher ??= new ContentHasher();
    const position = this.#hasher.size;
    const wanted = Math.min(STEP_BYTES, this.#file.stats.size - position);
    if (wanted <= 0) return true;
    const piece = this.#read(wanted, position);
    const length = piece.length;
    const zeroChunks = sharedZeroChunks;
    zeroChunks.length = 0;
    for (let offset = 0; offset < length; offset += CONTENT_CHUNK) {
      const chunk = piece.subarray(offset, offset + CONTENT_CHUNK);
      const zero = isAllZero(chunk);
      zeroChunks.push(zero);
      this.#hasher.addChunk(chunk, zero);
    }
    this.#sink?.write(piece, position, zeroChunks);
    return length < wanted || position + length === this.#file.stats.size;
  }

  /** The bytes read and their hash, once {@link step} returned true. */
  result(): FileContent {
    if (this.#hash !== undefined) return { size: this.#singleSize, hash: this.#hash };
    const hasher = this.#hasher ?? new ContentHasher();
    return { size: hasher.size, hash: hasher.digest() };
  }

  /** A file of at most one chunk: one read, one hash call (see {@link readSingleChunk}). */
  #singleChunk(): true {
    const { size, hash } = readSingleChunk(this.#file, this.#action);
    const piece = singleChunkBytes().subarray(0, size);
    sharedZeroChunks.length = 0;
    if (size > 0) sharedZeroChunks.push(piece[0] === 0 && isAllZero(piece));
    this.#sink?.write(piece, 0, sharedZeroChunks);
    this.#singleSize = size;
    this.#hash = hash;
    return true;
  }

  /** Releases the direct descriptor, if any. Idempotent. */
  close(): void {
    this.#direct?.close();
  }

  /** Reads `length` bytes from `position`, fewer only at the end of the file. */
  #read(length: number, position: number): Buffer {
    try {
      const direct = this.#direct?.read(length, position);
      if (direct !== undefined) return direct;
    } catch (cause) {
      throw sourceError(this.#action, this.#file.path, cause);
    }
    const buffer = stepBuffer();
    return buffer.subarray(0, readFully(this.#file, this.#action, buffer, length, position));
  }
}

/**
 * Runs a pass to its end and then calls `callback` (with the error, if a step throws). A file that fits in
 * a few steps passes at once, synchronously; a large one passes a slice at a time, with the event loop
 * running in between, and stops with `signal.reason` when the signal aborts.
 */
export function runPass(
  pass: ContentPass,
  signal: AbortSignal | undefined,
  callback: (error?: unknown) => void,
): void {
  const slice = () => {
    const start = performance.now();
    let finished: boolean;
    try {
      signal?.throwIfAborted();
      do finished = pass.step();
      while (!finished && performance.now() - start < SLICE_MS);
    } catch (error) {
      pass.close();
      callback(error);
      return;
    }
    if (!finished) {
      setImmediate(slice);
      return;
    }
    pass.close();
    callback();
  };
  slice();
}
