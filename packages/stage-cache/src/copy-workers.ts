import { existsSync, rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { type BytePath, fsPath, joinPath } from "./byte-path.js";
import { messageOf, StageCacheError } from "./errors.js";
import type { FileContent, SourceFile } from "./file-content.js";
import { copyFileContent } from "./file-copy.js";
import { runningPool } from "./worker-pool-slot.js";

type Callback = (error: unknown, content?: FileContent) => void;

/** Files larger than this are copied on the main thread, a slice at a time, where an abort can stop them. */
const WORKER_MAX_BYTES = 8 * 1024 * 1024;
/** A worker with this many jobs not yet done takes no more: the main thread copies meanwhile. */
const HIGH_WATER = 128;
/** Jobs per message: one message per file costs more than a small copy. */
const BATCH = 32;
/** An idle worker gets its first jobs sooner. */
const FIRST_BATCH = 4;
/**
 * Claim slots, one per job in flight, reused in turn. More than a walk ever has unfinished (see
 * `WalkOptions.concurrency`), so a slot is free again long before its turn comes back.
 */
export const CLAIM_SLOTS = 4096;
/** A claim slot's states: the job waits; a worker took it; the main thread took it back. */
export const WAITING = 0;
export const TAKEN_BY_WORKER = 1;
const TAKEN_BY_MAIN = 2;

const WORKER_URL = new URL("./copy-worker.js", import.meta.url);

/**
 * A batch of jobs, as bytes (one transferable buffer; cloning thousands of small objects costs more than
 * the copies). Per job: claim slot u32, fd u32, mode u32, size f64, blocks f64, source path length u32,
 * rel length u32, then the source path and the path inside the target (the bytes of byte paths).
 */
export const JOB_HEADER_BYTES = 36;
/** An answer per job, in order: size f64, then the 32-byte content hash. Failures and skips are apart. */
export const ANSWER_BYTES = 40;

/** What a worker receives: jobs for files below one target directory. */
export interface BatchMessage {
  targetRoot: BytePath;
  jobs: ArrayBuffer;
  /** Bytes of `jobs` in use. */
  length: number;
  count: number;
}

/** What a worker sends: that it is ready for jobs, or the answers to a batch. */
export type WorkerMessage =
  | { ready: true }
  | {
      answers: ArrayBuffer;
      failures: { index: number; code: string; message: string; path: string | undefined }[];
      /** Jobs the main thread took back before the worker got to them. */
      skipped: number[];
    };

/** The shared memory of a worker: jobs done, and one claim per job in flight. */
export interface WorkerShared {
  done: Int32Array;
  claims: Int32Array;
}

/** A job as the main thread keeps it until its answer: enough to copy it here instead. */
interface Handed {
  file: SourceFile;
  target: () => BytePath;
  callback: Callback;
  slot: number;
  takenBack: boolean;
}

/**
 * Worker threads that copy files for `copyTree`, so that two cores share the work: the main thread walks
 * (lists, opens by the rules, `fstat`s) and copies what the workers cannot take; the workers read, hash
 * and write. A worker receives the descriptor the walk opened (descriptors belong to the process) and reads
 * only from it, so the walk's guarantees hold unchanged; the main thread closes it once the answer comes.
 * A worker runs the very function the main thread runs (`copyFileContent`), so the copies are the same.
 *
 * Each job has a claim in shared memory that the worker takes before starting it. When the walk has
 * nothing left but to wait, the main thread takes back the newest jobs a worker has not started and copies
 * them itself ({@link help}), so a copy never waits on a worker's queue. A worker that dies hands its jobs
 * back the same way.
 *
 * One pool per process, started on first use and never stopped; its threads do not keep the process alive
 * while idle. Unavailable when the worker's module is not beside this one (running from TypeScript
 * sources, or bundled without it) or threads cannot start: then every file is copied on the main thread.
 */
export class CopyWorkers {
  static #shared: CopyWorkers | null | undefined;
  readonly #threads: WorkerThread[] = [];
  /** Jobs handed to workers so far, and taken back from them; for tests, which must know who copied. */
  given = 0;
  takenBack = 0;

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
          runningPool.current = CopyWorkers.#shared;
        } catch {
          // No threads here (a restricted runtime): copies stay on the main thread.
        }
      }
    }
    return CopyWorkers.#shared ?? undefined;
  }

  /** Resolves once every thread is ready for jobs (or has failed). Copies do not wait for it; tests do. */
  async ready(): Promise<void> {
    await Promise.all(this.#threads.map((thread) => thread.ready));
  }

  /**
   * Hands the copy of `file` to `targetRoot`/`rel` to a worker and returns true, or returns false when no
   * worker should take it now (none ready yet, all busy, or a large file): the caller copies it itself.
   * `callback` gets what `copyFileContent` would give.
   */
  offer(file: SourceFile, targetRoot: BytePath, rel: BytePath, callback: Callback): boolean {
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

  /**
   * Takes back the newest job that no worker has started and copies it on this thread; false when there
   * is none. Called while a walk has nothing else to do.
   */
  help(): boolean {
    const helped = this.#threads.some((thread) => thread.takeBack());
    if (helped) this.takenBack++;
    return helped;
  }
}

/** One worker thread and the jobs it has been given. */
class WorkerThread {
  readonly #worker: Worker;
  readonly #shared: WorkerShared = {
    done: new Int32Array(new SharedArrayBuffer(4)),
    claims: new Int32Array(new SharedArrayBuffer(4 * CLAIM_SLOTS)),
  };
  #ready = false;
  #broken = false;
  #given = 0;
  /** The batches sent, oldest first; answers come back in the same order. */
  readonly #sent: Handed[][] = [];
  #batch = new BatchWriter();
  #flushScheduled = false;
  /** Settles when the thread is ready for jobs, or has failed. */
  readonly ready: Promise<void>;

  constructor() {
    // The worker needs none of the process's own flags (and some, such as --input-type, stop it).
    this.#worker = new Worker(WORKER_URL, { workerData: this.#shared, execArgv: [] });
    this.ready = new Promise<void>((resolve) => {
      this.#worker.on("message", (message: WorkerMessage) => {
        if ("ready" in message) {
          // Not on "online": a thread is online well before its modules are loaded and it can take jobs.
          this.#ready = true;
          resolve();
        } else this.#answer(message);
      });
      this.#worker.once("error", () => resolve());
    });
    this.#worker.on("error", (error) => this.#fail(error));
    this.#worker.on("exit", (code) => this.#fail(new Error(`copy worker exited with code ${code}`)));
    // Only now: adding a "message" listener refs the worker again, and an idle worker must not keep the
    // process alive (a copy that started the pool may end before the worker is even ready).
    this.#worker.unref();
  }

  /** Jobs given and not done yet, the unsent batch included. */
  get backlog(): number {
    return this.#given - Atomics.load(this.#shared.done, 0);
  }

  get accepting(): boolean {
    return this.#ready && !this.#broken && this.backlog < HIGH_WATER;
  }

  add(file: SourceFile, targetRoot: BytePath, rel: BytePath, callback: Callback): void {
    // A batch goes to one target: a copy running alongside another sends batches of its own.
    if (!this.#batch.isFor(targetRoot)) this.#flush();
    const slot = this.#given % CLAIM_SLOTS;
    Atomics.store(this.#shared.claims, slot, WAITING);
    this.#batch.add({ file, target: () => joinPath(targetRoot, rel), callback, slot, takenBack: false }, rel);
    this.#batch.targetRoot = targetRoot;
    this.#given++;
    if (this.#batch.size >= (this.#sent.length === 0 ? FIRST_BATCH : BATCH)) this.#flush();
    else if (!this.#flushScheduled) {
      // A batch not full yet goes out at the next turn of the event loop, when the walk yields or ends.
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  /** Takes back the newest job the worker has not started, and copies it here. False when there is none. */
  takeBack(): boolean {
    const batches = [...this.#sent, this.#batch.handed];
    for (let b = batches.length - 1; b >= 0; b--) {
      const handed = batches[b] as Handed[];
      for (let index = handed.length - 1; index >= 0; index--) {
        const job = handed[index] as Handed;
        if (job.takenBack) continue;
        const claim = Atomics.compareExchange(this.#shared.claims, job.slot, WAITING, TAKEN_BY_MAIN);
        // Batches are worked through in order: once one job is the worker's, every older one is too.
        if (claim !== WAITING) return false;
        job.takenBack = true;
        copyHere(job);
        return true;
      }
    }
    return false;
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

  #answer({ answers, failures, skipped }: Exclude<WorkerMessage, { ready: true }>): void {
    const handed = this.#sent.shift() ?? [];
    if (this.#sent.length === 0) this.#worker.unref();
    const bytes = Buffer.from(answers);
    const failed = new Map(failures.map((failure) => [failure.index, failure]));
    const notDone = new Set(skipped);
    for (const [index, job] of handed.entries()) {
      // A job taken back is answered by its copy here; the worker did not start it.
      if (job.takenBack || notDone.has(index)) continue;
      const failure = failed.get(index);
      if (failure !== undefined) {
        const message = failure.message.replace(/^stage-cache: /, "");
        job.callback(new StageCacheError(failure.code, message, { path: failure.path }));
        continue;
      }
      const at = index * ANSWER_BYTES;
      const hash = bytes.toString("hex", at + 8, at + ANSWER_BYTES);
      job.callback(undefined, { size: bytes.readDoubleLE(at), hash });
    }
  }

  /**
   * A thread that died (or could not start) takes no more jobs, and the jobs it held are copied here
   * instead, as if taken back: their descriptors are still open (the main thread closes them), and
   * whatever the thread had written of a target is removed first.
   */
  #fail(cause: unknown): void {
    if (this.#broken) return;
    this.#broken = true;
    this.#worker.unref();
    const pending = [...this.#sent.splice(0).flat(), ...this.#batch.finish().handed];
    for (const job of pending) {
      if (job.takenBack) continue;
      job.takenBack = true;
      try {
        rmSync(fsPath(job.target()), { force: true });
      } catch (error) {
        job.callback(
          new StageCacheError("EIO", `copy worker failed (${messageOf(cause)}), and ${messageOf(error)}`),
        );
        continue;
      }
      copyHere(job);
    }
  }
}

/** Copies a job on this thread, as the walk would have without workers. */
function copyHere(job: Handed): void {
  copyFileContent(job.file, job.target(), undefined, job.callback);
}

/** Builds one batch message. */
class BatchWriter {
  #bytes = Buffer.allocUnsafeSlow(8192);
  #used = 0;
  targetRoot: BytePath | undefined;
  readonly handed: Handed[] = [];

  get size(): number {
    return this.handed.length;
  }

  /** Whether jobs for `targetRoot` can join this batch. */
  isFor(targetRoot: BytePath): boolean {
    return this.targetRoot === undefined || this.targetRoot === targetRoot;
  }

  add(job: Handed, rel: BytePath): void {
    const source = job.file.path;
    const needed = JOB_HEADER_BYTES + source.length + rel.length;
    if (this.#used + needed > this.#bytes.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(this.#bytes.length * 2, this.#used + needed));
      this.#bytes.copy(grown, 0, 0, this.#used);
      this.#bytes = grown;
    }
    const bytes = this.#bytes;
    const { stats } = job.file;
    let at = this.#used;
    at = bytes.writeUInt32LE(job.slot, at);
    at = bytes.writeUInt32LE(job.file.fd, at);
    at = bytes.writeUInt32LE(stats.mode, at);
    at = bytes.writeDoubleLE(stats.size, at);
    at = bytes.writeDoubleLE(stats.blocks, at);
    at = bytes.writeUInt32LE(source.length, at);
    at = bytes.writeUInt32LE(rel.length, at);
    at += bytes.write(source, at, "latin1");
    at += bytes.write(rel, at, "latin1");
    this.#used = at;
    this.handed.push(job);
  }

  /** The message for the worker (its job bytes are transferred, not copied) and the jobs as kept here. */
  finish(): { message: BatchMessage; handed: Handed[] } {
    const message = {
      targetRoot: this.targetRoot ?? ("" as BytePath),
      jobs: this.#bytes.buffer as ArrayBuffer,
      length: this.#used,
      count: this.handed.length,
    };
    return { message, handed: this.handed };
  }
}
