import { closeSync, constants, openSync, readSync } from "node:fs";
import { codeOf } from "./errors.js";
import { procLookupWorks } from "./tree-reader.js";

const O_DIRECT = constants.O_DIRECT ?? 0;
/** O_DIRECT wants the buffer, the offset and the length aligned to the device's logical block size. */
const ALIGNMENT = 4096;
/** Allocations are at least this aligned, so an aligned offset is a multiple of it. */
const ALLOCATION_ALIGNMENT = 8;
const DIRECT_BUFFER_BYTES = 1024 * 1024;

/**
 * Reading a file with holes without the page cache. A buffered read of a hole makes the kernel allocate and
 * zero a page-cache page for every 4 KiB of it: gigabytes of zeros cost seconds and push useful pages out.
 * Read with O_DIRECT, a hole costs almost nothing. Node cannot add O_DIRECT to an open descriptor, so a
 * second descriptor is opened through `/proc/self/fd/<fd>`, which reaches the very file the first one holds
 * (the magic link is not a new lookup by name). Linux with /proc only; elsewhere, and wherever the
 * filesystem refuses O_DIRECT, reads stay buffered.
 */
export class DirectReader {
  readonly #fd: number;
  #refused = false;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /** A reader for the file `fd` holds, or undefined where O_DIRECT is not available. */
  static open(fd: number): DirectReader | undefined {
    if (O_DIRECT === 0 || !procLookupWorks()) return undefined;
    try {
      return new DirectReader(openSync(`/proc/self/fd/${fd}`, constants.O_RDONLY | O_DIRECT));
    } catch {
      return undefined;
    }
  }

  /**
   * Reads up to `length` bytes (at most 1 MiB) at `position` (a multiple of 4 KiB) into a shared buffer and
   * returns them, fewer only at the end of the file; undefined once the filesystem has refused direct reads
   * of this file (the caller reads buffered from then on). Throws other read errors.
   */
  read(length: number, position: number): Buffer | undefined {
    if (this.#refused || length > DIRECT_BUFFER_BYTES) return undefined;
    const rounded = Math.ceil(length / ALIGNMENT) * ALIGNMENT;
    // JavaScript cannot see a buffer's address, so the offset into it that the kernel accepts as aligned is
    // found by trial, and kept. Holes are read without the check, so it is made again on the first data.
    for (const offset of alignmentCandidates()) {
      const buffer = directBuffer().subarray(offset, offset + DIRECT_BUFFER_BYTES);
      try {
        const filled = readFully(this.#fd, buffer, rounded, position);
        alignedOffset = offset;
        return buffer.subarray(0, Math.min(filled, length));
      } catch (error) {
        if (codeOf(error) !== "EINVAL") throw error;
      }
    }
    this.#refused = true;
    return undefined;
  }

  close(): void {
    closeSync(this.#fd);
  }
}

let raw: Buffer | undefined;
let alignedOffset: number | undefined;

/** Over-allocated, so that some offset into it is aligned. Shared: reads are synchronous steps. */
function directBuffer(): Buffer {
  raw ??= Buffer.allocUnsafeSlow(DIRECT_BUFFER_BYTES + ALIGNMENT);
  return raw;
}

/** The offset that worked last, then every other offset that can be aligned. */
function alignmentCandidates(): number[] {
  const all = Array.from(
    { length: ALIGNMENT / ALLOCATION_ALIGNMENT },
    (_, index) => index * ALLOCATION_ALIGNMENT,
  );
  return alignedOffset === undefined
    ? all
    : [alignedOffset, ...all.filter((offset) => offset !== alignedOffset)];
}

function readFully(fd: number, buffer: Buffer, length: number, position: number): number {
  let filled = 0;
  while (filled < length) {
    const read = readSync(fd, buffer, filled, length - filled, position + filled);
    if (read === 0) break;
    filled += read;
  }
  return filled;
}
