import { closeSync, constants, fchmodSync, ftruncateSync, openSync, writeSync } from "node:fs";
import { type BytePath, fsPath } from "./byte-path.js";
import { CONTENT_CHUNK } from "./content-hash.js";
import {
  type ChunkSink,
  ContentPass,
  type FileContent,
  hasHoles,
  isSingleChunk,
  readSingleChunk,
  runPass,
  type SourceFile,
  singleChunkBytes,
} from "./file-content.js";
import { targetError } from "./fs-errors.js";

const { O_WRONLY, O_CREAT, O_EXCL } = constants;
/** A copy is a new file: never an existing one, never through a symlink. */
const CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | (constants.O_NOFOLLOW ?? 0);
/** A copy keeps the read/write/execute bits and drops setuid, setgid and sticky, as `cp` without `-p`. */
export const COPIED_MODE_BITS = 0o777;

/**
 * The copy of one file, being written. Created exclusively and private (0600) until {@link finish} gives it
 * its permission bits. A source with holes is copied with holes: content chunks that are all zeros are not
 * written, and the final size is set at the end.
 */
class TargetFile implements ChunkSink {
  readonly #fd: number;
  readonly #path: BytePath;
  readonly #source: SourceFile;
  readonly #sparse: boolean;

  constructor(path: BytePath, source: SourceFile) {
    this.#path = path;
    this.#source = source;
    this.#sparse = hasHoles(source.stats);
    this.#fd = createTarget(path, source);
  }

  write(piece: Buffer, position: number, zeroChunks: readonly boolean[]): void {
    if (!this.#sparse) {
      this.#writeAll(piece, position);
      return;
    }
    let runStart = -1;
    for (let index = 0; index <= zeroChunks.length; index++) {
      const data = index < zeroChunks.length && !zeroChunks[index];
      if (data && runStart < 0) runStart = index * CONTENT_CHUNK;
      if (!data && runStart >= 0) {
        const runEnd = Math.min(index * CONTENT_CHUNK, piece.length);
        this.#writeAll(piece.subarray(runStart, runEnd), position + runStart);
        runStart = -1;
      }
    }
  }

  /** Sets the size (a trailing hole is never written) and the permission bits, and closes the file. */
  finish(size: number): void {
    try {
      if (this.#sparse) ftruncateSync(this.#fd, size);
      fchmodSync(this.#fd, this.#source.stats.mode & COPIED_MODE_BITS);
    } catch (cause) {
      this.abandon();
      throw targetError(this.#path, cause, this.#source.path);
    }
    closeSync(this.#fd);
  }

  /** Closes the file after a failure; the caller removes the whole copy. */
  abandon(): void {
    try {
      closeSync(this.#fd);
    } catch {
      // Already closed.
    }
  }

  #writeAll(bytes: Buffer, position: number): void {
    try {
      writeAll(this.#fd, bytes, bytes.length, position);
    } catch (cause) {
      throw targetError(this.#path, cause, this.#source.path);
    }
  }
}

/** Creates the new, private file `path` for the copy of `source`. Throws its {@link targetError}. */
function createTarget(path: BytePath, source: SourceFile): number {
  try {
    return openSync(fsPath(path), CREATE_FLAGS, 0o600);
  } catch (cause) {
    throw targetError(path, cause, source.path);
  }
}

function writeAll(fd: number, bytes: Buffer, length: number, position: number): void {
  for (let written = 0; written < length; ) {
    written += writeSync(fd, bytes, written, length - written, position + written);
  }
}

/**
 * The copy of a file of at most one chunk and without holes, most files of a tree: one read, one hash
 * call, one write, all synchronous, with no object kept per file.
 */
function copySingleChunk(file: SourceFile, target: BytePath): FileContent {
  const content = readSingleChunk(file, "copy");
  const fd = createTarget(target, file);
  try {
    writeAll(fd, singleChunkBytes(), content.size, 0);
    fchmodSync(fd, file.stats.mode & COPIED_MODE_BITS);
  } catch (cause) {
    closeSync(fd);
    throw targetError(target, cause, file.path);
  }
  closeSync(fd);
  return content;
}

/**
 * Copies `file` (its descriptor) to the new file `target` and calls `callback` with what was written: its
 * size and content hash, computed from the very bytes written. Exact bytes, holes kept, permission bits
 * without setuid/setgid/sticky. On failure the callback gets a StageCacheError and `target` may be left
 * partly written (the caller removes the whole copy).
 */
export function copyFileContent(
  file: SourceFile,
  target: BytePath,
  signal: AbortSignal | undefined,
  callback: (error: unknown, content?: FileContent) => void,
): void {
  if (isSingleChunk(file.stats)) {
    let content: FileContent;
    try {
      content = copySingleChunk(file, target);
    } catch (error) {
      callback(error);
      return;
    }
    callback(undefined, content);
    return;
  }
  let copy: TargetFile;
  try {
    copy = new TargetFile(target, file);
  } catch (error) {
    callback(error);
    return;
  }
  const pass = new ContentPass(file, "copy", copy);
  runPass(pass, signal, (error) => {
    if (error !== undefined) {
      copy.abandon();
      callback(error);
      return;
    }
    const content = pass.result();
    try {
      copy.finish(content.size);
    } catch (finishError) {
      callback(finishError);
      return;
    }
    callback(undefined, content);
  });
}
