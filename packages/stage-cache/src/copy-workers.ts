import { existsSync, rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { messageOf, StageCacheError } from "./errors.js";
import type { FileContent, SourceFile } from "./file-content.js";
import { copyFileContent } from "./file-copy.js";
import { childPath } from "./tree-reader.js";

type Callback = (error: unknown, content?: FileContent) => void;

/** A job as the main thread keeps it until its answer: enough to copy it here instead. */
interface Handed {
  file: SourceFile;
  target: () => Buffer;
  callback: Callback;
}

/** Files larger than this are copied on the main thread, a slice at a time, where an abort can stop them. */
const WORKER_MAX_BYTES = 8 * 1024 * 1024;
/** A worker with this many jobs not yet done takes no more: the main thread copies meanwhile. */
const HIGH_WATER = 96;
/** Jobs per message: one message per file costs more than a small copy. */
const BATCH = 64;
/** An idle worker gets its first jobs sooner. */
const FIRST_BATCH = 4;

const WORKER_URL = new URL("./copy-worker.js", import.meta.url);

/**
 * A batch of jobs, as bytes (one transferable buffer; cloning thousands of small objects costs more than
 * the copies). Per job: fd u32, mode u32, size f64, blocks f64, source path length u32, rel length u32,
 * then the source path and the path inside the target. Read by `readBatch`.
 */
export const JOB_HEADER_BYTES = 32;
/** An answer per job, in order: size f64, then the 32-byte content hash. Failures are listed apart. */
export const ANSWER_BYTES = 40;

/** What a worker receives: jobs for files below one target directory. */
export interface BatchMessage {
  targetRoot: Uint8Array;
  jobs: ArrayBuffer;
  /** Bytes of `jobs` in use. */
  length: number;
  count: number;
}

/** What a worker sends back for a batch. */
export interface BatchAnswer {
  answers: ArrayBuffer;
  failures: { index: number; code: string; message: string; path: string | undefined }[];
}

/**
 * Worker threads that copy files for `copyTree`, so that two cores share the work: the main thread walks
 * (lists, opens by the rules, `fstat`s) and copies what the workers cannot take; the workers read, hash
 * and write. A worker receives the descriptor the walk opened (descriptors belong to the process) and reads
 * only from it, so the walk's guarantees hold unchanged; the main thread closes it once the answer comes.
 * A worker runs the very function the main thread runs (`copyFileContent`), so the copies are the same.
 *
 * One pool per process, started on first use and never stopped; its threads do not keep the process alive
 * while idle. Unavailable when the worker's module is not beside this one (running from TypeScript
 * sources, or bundled without it) or threads cannot start: then every file is copied on the main thread.
 */
export class CopyWorkers {
  static #shared: CopyWorkers | null | undefined;
  readonly #threads: WorkerThread[] = [];
  /** Jobs handed to workers so far; for tests, which must know that the workers did the copying. */
  given = 0;

  private constructor(count: number) {
    for (let index = 0; index < count; index++) this.#threads.push(new WorkerThread());
  }

  /** The process's pool, started now if it was not; undefined where workers are unavailable. */
  static shared(): CopyWorkers | undefined {
    if (CopyWorkers.#shared === undefined) {
      CopyWorkers.#shared = null;
      if (existsSync(fileURLToPath(WORKER_URL))) {
        try {
          CopyWorkers.#shared = new CopyWorkers(Math.max(1, Math.min(3, availableParallelism() - 1)));
        } catch {
          // No threads here (a restricted runtime): copies stay on the main thread.
        }
      }
    }
    return CopyWorkers.#shared ?? undefined;
  }

  /** Resolves once every thread has started (or failed to). Copies do not wait for it; tests do. */
  async online(): Promise<void> {
    await Promise.all(this.#threads.map((thread) => thread.started));
  }

  /**
   * Hands the copy of `file` to `targetRoot`/`rel` to a worker and returns true, or returns false when no
   * worker should take it now (none running yet, all busy, or a large file): the caller copies it itself.
   * `callback` gets what `copyFileContent` would give.
   */
  offer(file: SourceFile, targetRoot: Buffer, rel: Buffer, callback: Callback): boolean {
    if (file.stats.size > WORKER_MAX_BYTES) return false;
    let chosen: WorkerThread | undefined;
    for (const thread of this.#threads) {
      if (thread.accepting && (chosen === undefined || thread.backlog < chosen.backlog)) chosen = thread;
    }
    if (chosen === undefined) return false;
    chosen.add(file, targetRoot, rel, callback);
    this.given++;
    return true;
  }
}

/** One worker thread and the jobs it has been given. */
class WorkerThread {
  readonly #worker: Worker;
  /** Jobs the worker has finished, counted by the worker itself: seen without waiting for its messages. */
  readonly #done = new Int32Array(new SharedArrayBuffer(4));
  #online = false;
  #broken = false;
  #given = 0;
  /** Callbacks of the batches sent, oldest first; answers come back in the same order. */
  readonly #sent: Handed[][] = [];
  #batch = new BatchWriter();
  #flushScheduled = false;
  /** Settles when the thread has started, or failed to. */
  readonly started: Promise<void>;

  constructor() {
    // The worker needs none of the process's own flags (and some, such as --input-type, stop it).
    this.#worker = new Worker(WORKER_URL, { workerData: { done: this.#done }, execArgv: [] });
    this.#worker.unref();
    this.started = new Promise<void>((resolve) => {
      this.#worker.once("online", () => {
        this.#online = true;
        resolve();
      });
      this.#worker.once("error", () => resolve());
    });
    this.#worker.on("message", (answer: BatchAnswer) => this.#answer(answer));
    this.#worker.on("error", (error) => this.#fail(error));
    this.#worker.on("exit", (code) => this.#fail(new Error(`copy worker exited with code ${code}`)));
  }

  /** Jobs given and not done yet, the unsent batch included. */
  get backlog(): number {
    return this.#given - Atomics.load(this.#done, 0);
  }

  get accepting(): boolean {
    return this.#online && !this.#broken && this.backlog < HIGH_WATER;
  }

  add(file: SourceFile, targetRoot: Buffer, rel: Buffer, callback: Callback): void {
    // A batch goes to one target: a copy running alongside another sends batches of its own.
    if (!this.#batch.isFor(targetRoot)) this.#flush();
    this.#batch.add(file, targetRoot, rel, callback);
    this.#given++;
    if (this.#batch.size >= (this.#sent.length === 0 ? FIRST_BATCH : BATCH)) this.#flush();
    else if (!this.#flushScheduled) {
      // A batch not full yet goes out at the next turn of the event loop, when the walk yields or ends.
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#batch.size === 0 || this.#broken) return;
    if (this.#sent.length === 0) this.#worker.ref();
    const { message, handed } = this.#batch.finish();
    this.#sent.push(handed);
    this.#worker.postMessage(message, [message.jobs]);
    this.#batch = new BatchWriter();
  }

  #answer({ answers, failures }: BatchAnswer): void {
    const handed = this.#sent.shift() ?? [];
    if (this.#sent.length === 0) this.#worker.unref();
    const bytes = Buffer.from(answers);
    const failed = new Map(failures.map((failure) => [failure.index, failure]));
    for (const [index, { callback }] of handed.entries()) {
      const failure = failed.get(index);
      if (failure !== undefined) {
        const message = failure.message.replace(/^stage-cache: /, "");
        callback(new StageCacheError(failure.code, message, { path: failure.path }));
        continue;
      }
      const at = index * ANSWER_BYTES;
      // A copy of the hash's bytes: the manifest keeps it after this buffer is gone.
      const hash = Buffer.from(bytes.subarray(at + 8, at + ANSWER_BYTES));
      callback(undefined, { size: bytes.readDoubleLE(at), hash });
    }
  }

  /**
   * A thread that died (or could not start) takes no more jobs, and the jobs it held are copied here
   * instead: their descriptors are still open (the main thread closes them), and whatever the thread had
   * written of a target is removed first.
   */
  #fail(cause: unknown): void {
    if (this.#broken) return;
    this.#broken = true;
    this.#worker.unref();
    const pending = [...this.#sent.splice(0).flat(), ...this.#batch.finish().handed];
    for (const { file, target, callback } of pending) {
      const path = target();
      try {
        rmSync(path, { force: true });
      } catch (error) {
        callback(
          new StageCacheError("EIO", `copy worker failed (${messageOf(cause)}), and ${messageOf(error)}`),
        );
        continue;
      }
      copyFileContent(file, path, undefined, callback);
    }
  }
}

/** Builds one batch message. */
class BatchWriter {
  #bytes = Buffer.allocUnsafeSlow(8192);
  #used = 0;
  #targetRoot: Buffer | undefined;
  readonly #handed: Handed[] = [];

  get size(): number {
    return this.#handed.length;
  }

  /** Whether jobs for `targetRoot` can join this batch. */
  isFor(targetRoot: Buffer): boolean {
    return (
      this.#targetRoot === undefined || this.#targetRoot === targetRoot || this.#targetRoot.equals(targetRoot)
    );
  }

  add(file: SourceFile, targetRoot: Buffer, rel: Buffer, callback: Callback): void {
    this.#targetRoot = targetRoot;
    const source = file.path;
    const needed = JOB_HEADER_BYTES + source.length + rel.length;
    if (this.#used + needed > this.#bytes.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(this.#bytes.length * 2, this.#used + needed));
      this.#bytes.copy(grown, 0, 0, this.#used);
      this.#bytes = grown;
    }
    const bytes = this.#bytes;
    let at = this.#used;
    at = bytes.writeUInt32LE(file.fd, at);
    at = bytes.writeUInt32LE(file.stats.mode, at);
    at = bytes.writeDoubleLE(file.stats.size, at);
    at = bytes.writeDoubleLE(file.stats.blocks, at);
    at = bytes.writeUInt32LE(source.length, at);
    at = bytes.writeUInt32LE(rel.length, at);
    at += source.copy(bytes, at);
    at += rel.copy(bytes, at);
    this.#used = at;
    this.#handed.push({ file, target: () => childPath(targetRoot, rel), callback });
  }

  /** The message for the worker (its job bytes are transferred, not copied) and the jobs as kept here. */
  finish(): { message: BatchMessage; handed: Handed[] } {
    const message = {
      targetRoot: this.#targetRoot ?? Buffer.alloc(0),
      jobs: this.#bytes.buffer as ArrayBuffer,
      length: this.#used,
      count: this.#handed.length,
    };
    return { message, handed: this.#handed };
  }
}
