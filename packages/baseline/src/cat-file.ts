import { type ChildProcessByStdio, spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { BaselineError } from "./errors.js";

/** The header git prints before each object's bytes. */
export interface ObjectHeader {
  oid: string;
  type: string;
  size: number;
}

const LF = 0x0a;
const EMPTY = Buffer.alloc(0);

/**
 * One long-lived `git cat-file --batch` process. It is spawned with child_process rather than through
 * simple-git because simple-git buffers a command's whole output and decodes it as UTF-8: blobs would be
 * mangled and memory would grow with the repository. Here objects are read as bytes, in request order,
 * and a large blob flows to disk chunk by chunk with backpressure, so memory stays flat.
 *
 * Usage: {@link request} object names, then for each one {@link readHeader} followed by {@link readBody} or
 * {@link pipeBody}. {@link close} ends the process (always call it, in a `finally`).
 */
export class CatFileBatch {
  readonly #child: ChildProcessByStdio<Writable, Readable, Readable>;
  readonly #chunks: AsyncIterator<Buffer>;
  #buffer: Buffer = EMPTY;
  #stderr = "";
  #spawnError: Error | undefined;
  readonly #onAbort: () => void;
  readonly #signal: AbortSignal | undefined;
  readonly #buffered: boolean;

  /**
   * With `buffered`, git buffers its output (`--buffer`) instead of flushing after every object, which is
   * much faster for many small objects; all requests must then be sent with one {@link request} call,
   * which also ends the input (git flushes when its input ends).
   */
  constructor(cwd: string, options: { buffered?: boolean; signal?: AbortSignal | undefined } = {}) {
    const { signal, buffered = false } = options;
    this.#buffered = buffered;
    this.#signal = signal;
    this.#child = spawn("git", buffered ? ["cat-file", "--batch", "--buffer"] : ["cat-file", "--batch"], {
      cwd,
      env: gitFreeEnvironment(),
      stdio: ["pipe", "pipe", "pipe"],
      windowsHide: true,
    });
    this.#child.on("error", (error) => {
      this.#spawnError = error;
    });
    // An early exit of git (bad repository) must surface as an error, not as an EPIPE crash.
    this.#child.stdin.on("error", () => {});
    this.#child.stderr.setEncoding("utf8");
    this.#child.stderr.on("data", (text: string) => {
      if (this.#stderr.length < 4096) this.#stderr += text;
    });
    this.#chunks = this.#child.stdout[Symbol.asyncIterator]();
    this.#onAbort = () => this.#child.kill();
    signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Queues requests for these object names (hex SHAs or revisions such as `<commit>^{tree}`). */
  request(names: readonly string[]): void {
    if (names.length > 0) this.#child.stdin.write(`${names.join("\n")}\n`);
    if (this.#buffered) this.#child.stdin.end();
  }

  /** Reads the next header. Throws {@link BaselineError} `EBADTREE` when the object is missing. */
  async readHeader(): Promise<ObjectHeader> {
    let newline = this.#buffer.indexOf(LF);
    while (newline < 0) {
      await this.#fill();
      newline = this.#buffer.indexOf(LF);
    }
    const line = this.#buffer.toString("utf8", 0, newline);
    this.#buffer = this.#buffer.subarray(newline + 1);
    const [oid = "", type = "", size = ""] = line.split(" ");
    if (!/^\d+$/.test(size)) {
      throw new BaselineError(
        "EGIT",
        `git cat-file cannot read object ${line} (is the repository complete?)`,
      );
    }
    return { oid, type, size: Number(size) };
  }

  /** Reads a whole body of `size` bytes into memory (for trees and small blobs). */
  async readBody(size: number): Promise<Buffer> {
    if (this.#buffer.length >= size + 1) return this.#take(size);
    const parts: Buffer[] = [];
    let left = size;
    while (left > 0) {
      if (this.#buffer.length === 0) await this.#fill();
      const part = this.#buffer.subarray(0, Math.min(left, this.#buffer.length));
      this.#buffer = this.#buffer.subarray(part.length);
      parts.push(part);
      left -= part.length;
    }
    await this.#skipTerminator();
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size);
  }

  /** Streams a body of `size` bytes to `sink`, one chunk at a time, waiting for each. */
  async pipeBody(size: number, sink: (chunk: Buffer) => Promise<unknown>): Promise<void> {
    let left = size;
    while (left > 0) {
      if (this.#buffer.length === 0) await this.#fill();
      const part = this.#buffer.subarray(0, Math.min(left, this.#buffer.length));
      this.#buffer = this.#buffer.subarray(part.length);
      left -= part.length;
      await sink(part);
    }
    await this.#skipTerminator();
  }

  /** Ends the process; safe to call more than once. */
  close(): void {
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#child.stdin.end();
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill();
    this.#child.stdout.destroy();
  }

  #take(size: number): Buffer {
    const body = this.#buffer.subarray(0, size);
    // Every body is followed by one LF.
    this.#buffer = this.#buffer.subarray(size + 1);
    return body;
  }

  async #skipTerminator(): Promise<void> {
    if (this.#buffer.length === 0) await this.#fill();
    this.#buffer = this.#buffer.subarray(1);
  }

  async #fill(): Promise<void> {
    const next = await this.#chunks.next();
    if (next.done) {
      this.#signal?.throwIfAborted();
      const why = this.#spawnError?.message ?? (this.#stderr.trim() || "it exited early");
      throw new BaselineError("EGIT", `git cat-file --batch stopped: ${why}`, { cause: this.#spawnError });
    }
    this.#buffer = this.#buffer.length === 0 ? next.value : Buffer.concat([this.#buffer, next.value]);
  }
}

/**
 * The environment for spawned git processes, without inherited `GIT_*` variables, as simple-git does: a
 * `GIT_DIR` or `GIT_INDEX_FILE` from a calling hook must not redirect git to another repository.
 */
export function gitFreeEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.toUpperCase().startsWith("GIT_")) env[name] = value;
  }
  return env;
}
