import type { ChildProcessByStdio } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { BaselineError } from "./errors.js";
import { gitSpawnError, spawnGit } from "./git-process.js";

/** The header git prints before each object's bytes; `type` is `missing` for an object it lacks. */
export interface ObjectHeader {
  oid: string;
  type: string;
  size: number;
}

const LF = 0x0a;
const EMPTY = Buffer.alloc(0);

/**
 * One long-lived `git cat-file --batch` process, spawned directly (simple-git buffers a command's whole
 * output and decodes it as UTF-8, which would mangle objects). Objects are read as bytes, in request
 * order.
 *
 * Usage: {@link request} object names, then for each one {@link readHeader} followed by {@link readBody} or
 * {@link skipBody} or {@link streamBody}. {@link close} ends the process (always call it, in a `finally`).
 */
export class CatFileBatch {
  readonly #child: ChildProcessByStdio<Writable, Readable, Readable>;
  readonly #chunks: AsyncIterator<Buffer>;
  #buffer: Buffer = EMPTY;
  #stderr = "";
  #spawnError: Error | undefined;
  readonly #onAbort: () => void;
  readonly #signal: AbortSignal | undefined;

  /**
   * With `buffered`, git buffers its output (`--buffer`) instead of flushing after every object, which is
   * much faster for many objects; git then answers only once its input is ended ({@link end}).
   */
  constructor(options: {
    env: NodeJS.ProcessEnv;
    cwd?: string | undefined;
    buffered?: boolean;
    signal?: AbortSignal | undefined;
  }) {
    const { signal, buffered = false } = options;
    this.#signal = signal;
    this.#child = spawnGit(buffered ? ["cat-file", "--batch", "--buffer"] : ["cat-file", "--batch"], options);
    this.#child.on("error", (error) => {
      this.#spawnError = error;
    });
    this.#child.stderr.setEncoding("utf8");
    this.#child.stderr.on("data", (text: string) => {
      if (this.#stderr.length < 4096) this.#stderr += text;
    });
    this.#chunks = this.#child.stdout[Symbol.asyncIterator]();
    this.#onAbort = () => this.#child.kill();
    signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Queues requests for these object names (hex ids or revisions such as `<commit>^{tree}`). */
  request(names: readonly string[]): void {
    if (names.length > 0) this.#child.stdin.write(`${names.join("\n")}\n`);
  }

  /** Ends the requests; a buffered batch answers from then on. */
  end(): void {
    this.#child.stdin.end();
  }

  /** Reads the next header; `type` is `missing` when git does not have the object. */
  async readHeader(): Promise<ObjectHeader> {
    let newline = this.#buffer.indexOf(LF);
    while (newline < 0) {
      await this.#fill();
      newline = this.#buffer.indexOf(LF);
    }
    const line = this.#buffer.toString("utf8", 0, newline);
    this.#buffer = this.#buffer.subarray(newline + 1);
    const [oid = "", type = "", size = ""] = line.split(" ");
    if (type === "missing") return { oid, type, size: 0 };
    if (!/^\d+$/.test(size)) {
      throw new BaselineError(
        "EGIT",
        `git cat-file cannot read object ${line} (is the repository complete?)`,
      );
    }
    return { oid, type, size: Number(size) };
  }

  /** Reads a whole body of `size` bytes into memory. */
  async readBody(size: number): Promise<Buffer> {
    if (this.#buffer.length >= size + 1) {
      const body = this.#buffer.subarray(0, size);
      // Every body is followed by one LF.
      this.#buffer = this.#buffer.subarray(size + 1);
      return body;
    }
    const parts: Buffer[] = [];
    await this.#consume(size, (part) => parts.push(part));
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size);
  }

  /** Reads past a body of `size` bytes without keeping it. */
  async skipBody(size: number): Promise<void> {
    await this.#consume(size, () => {});
  }

  /** Hands a body of `size` bytes to `sink` chunk by chunk, so memory does not grow with the object. */
  async streamBody(size: number, sink: (chunk: Buffer) => void): Promise<void> {
    await this.#consume(size, sink);
  }

  /** Ends the process; safe to call more than once. */
  close(): void {
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#child.stdin.end();
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill();
    this.#child.stdout.destroy();
  }

  async #consume(size: number, sink: (part: Buffer) => void): Promise<void> {
    let left = size;
    while (left > 0) {
      if (this.#buffer.length === 0) await this.#fill();
      const part = this.#buffer.subarray(0, Math.min(left, this.#buffer.length));
      this.#buffer = this.#buffer.subarray(part.length);
      sink(part);
      left -= part.length;
    }
    if (this.#buffer.length === 0) await this.#fill();
    this.#buffer = this.#buffer.subarray(1);
  }

  async #fill(): Promise<void> {
    const next = await this.#chunks.next();
    if (next.done) {
      this.#signal?.throwIfAborted();
      if (this.#spawnError) throw gitSpawnError(this.#spawnError);
      const why = this.#stderr.trim() || "it exited early";
      throw new BaselineError("EGIT", `git cat-file --batch stopped: ${why}`);
    }
    this.#buffer = this.#buffer.length === 0 ? next.value : Buffer.concat([this.#buffer, next.value]);
  }
}

/** One object as {@link readObjects} hands it over; `body` is empty for a missing object. */
export interface BatchObject {
  oid: string;
  type: string;
  body: Buffer;
}

/**
 * Reads the objects `names` with one `git cat-file --batch --buffer` and hands each to `onObject` in
 * request order, synchronously as git's output arrives (no promise per object: this reads every tree of
 * a commit). `onObject` may throw to stop, which kills git. Only for objects small enough to hold in
 * memory (trees, symlink targets). `names` may be a promise: git is started at once, so its start-up
 * overlaps whatever produces the names. Rejects with what `onObject` threw, what `names` rejected with,
 * {@link BaselineError} `EGIT` when git fails, or `signal.reason`.
 */
export function readObjects(
  names: readonly string[] | Promise<readonly string[]>,
  options: { env: NodeJS.ProcessEnv; signal?: AbortSignal | undefined },
  onObject: (object: BatchObject) => void,
): Promise<void> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (Array.isArray(names) && names.length === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const child = spawnGit(["cat-file", "--batch", "--buffer"], options);
    let failure: unknown;
    let stderr = "";
    let spawnError: Error | undefined;
    let pending: Buffer[] = [];
    let pendingLength = 0;
    let header: { oid: string; type: string; size: number } | undefined;
    let received = 0;
    let expected = Number.POSITIVE_INFINITY;
    const stop = (reason: unknown) => {
      failure ??= reason;
      child.kill();
    };
    const onAbort = () => stop(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (text: string) => {
      if (stderr.length < 4096) stderr += text;
    });
    child.on("error", (error) => {
      spawnError = error;
    });
    child.stdout.on("data", (chunk: Buffer) => {
      if (failure !== undefined) return;
      // A body still incomplete: keep the chunk and wait, instead of copying what came so far again.
      if (header !== undefined && pendingLength + chunk.length < header.size + 1) {
        pending.push(chunk);
        pendingLength += chunk.length;
        return;
      }
      let data =
        pendingLength === 0 ? chunk : Buffer.concat([...pending, chunk], pendingLength + chunk.length);
      pending = [];
      pendingLength = 0;
      try {
        for (;;) {
          if (header === undefined) {
            const newline = data.indexOf(LF);
            if (newline < 0) break;
            header = parseHeader(data.toString("latin1", 0, newline));
            data = data.subarray(newline + 1);
            if (header.type === "missing") {
              onObject({ oid: header.oid, type: header.type, body: EMPTY });
              header = undefined;
              received++;
              continue;
            }
          }
          if (data.length < header.size + 1) break;
          const { oid, type, size } = header;
          header = undefined;
          received++;
          onObject({ oid, type, body: data.subarray(0, size) });
          data = data.subarray(size + 1);
        }
      } catch (error) {
        stop(error);
        return;
      }
      if (data.length > 0) {
        pending = [data];
        pendingLength = data.length;
      }
    });
    child.on("close", () => {
      signal?.removeEventListener("abort", onAbort);
      if (failure !== undefined) reject(failure);
      else if (spawnError) reject(gitSpawnError(spawnError));
      else if (received < expected) {
        reject(
          new BaselineError("EGIT", `git cat-file --batch stopped: ${stderr.trim() || "it exited early"}`),
        );
      } else resolve();
    });
    Promise.resolve(names).then(
      (list) => {
        expected = list.length;
        child.stdin.end(list.length > 0 ? `${list.join("\n")}\n` : "");
      },
      (error: unknown) => stop(error),
    );
  });
}

function parseHeader(line: string): { oid: string; type: string; size: number } {
  const first = line.indexOf(" ");
  const second = line.indexOf(" ", first + 1);
  const oid = line.slice(0, first);
  const type = second < 0 ? line.slice(first + 1) : line.slice(first + 1, second);
  if (type === "missing") return { oid, type, size: 0 };
  const size = second < 0 ? Number.NaN : Number(line.slice(second + 1));
  if (first < 0 || !Number.isSafeInteger(size) || size < 0) {
    throw new BaselineError("EGIT", `git cat-file cannot read object ${line} (is the repository complete?)`);
  }
  return { oid, type, size };
}
