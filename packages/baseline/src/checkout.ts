import { readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { BaselineError, writeError } from "./errors.js";
import { gitSpawnError, spawnGit } from "./git-process.js";
import { checkedOutBytes, entryPath, type ParsedIndex, parseIndex, subIndex } from "./index-file.js";

/** What {@link checkoutFiles} needs besides the files. */
export interface CheckoutOptions {
  /** The directory the files go into: the private repository's working tree. */
  target: string;
  /** The private repository's git directory, which receives one index per batch. */
  gitDir: string;
  /** The private repository's environment, with `GIT_WORK_TREE` set. */
  env: NodeJS.ProcessEnv;
  /** Creates a directory under `target` and its missing parents (given `/`-separated bytes). */
  makeDirectory: (path: Buffer) => void;
  /** Called as batches of files complete, with the count so far. */
  onWritten?: ((written: number) => void) | undefined;
  /** Called once, when the first git processes are running: the caller's own work can overlap them. */
  onStarted?: (() => void) | undefined;
  signal?: AbortSignal | undefined;
}

/** Why a checkout-index process failed: git's first complaint, and the path it named if any. */
export interface CheckoutFailure {
  stderr: string;
  /** The file or directory git could not write, as raw bytes relative to `target`. */
  path: Buffer | undefined;
  /** What git was doing: creating or writing a file, creating a directory, reading an object. */
  action: "create" | "write" | "mkdir" | "exists" | "read" | "other";
}

/** Thrown by {@link checkoutFiles} when git reports a failure; the caller turns it into a precise error. */
export class CheckoutError extends Error {
  readonly failure: CheckoutFailure;

  constructor(failure: CheckoutFailure) {
    super(`git checkout-index failed: ${failure.stderr}`);
    this.name = "CheckoutError";
    this.failure = failure;
  }
}

/** Fewer files than this go to one process: starting a second costs more than it saves. */
const MIN_FILES_PER_PROCESS = 256;
/** A batch's size, so progress moves and the processes finish together on large trees. */
const FILES_PER_BATCH = 8192;
/** Processes at once: one per core, as inflating objects and writing files is CPU work. */
const MAX_PROCESSES = 8;

/**
 * Writes `files` (entries of `index`) into `target` with several `git checkout-index -a` processes at
 * once, each given an index of its own that holds a contiguous run of the files.
 *
 * git creates the directories it needs, so two processes must never create the same one: in bytewise
 * order the files under one directory are contiguous, so a directory shared by two runs holds the first
 * path of the later run; those directories (the parents of each run's first path) are created here first.
 *
 * Each process rewrites its index with the stat data of the files it wrote (`--index`), which proves that
 * it wrote every one of them and gives their sizes without looking at any file again.
 *
 * Resolves, once every file is written, to the files' total size (see {@link checkedOutBytes}). Rejects
 * with {@link CheckoutError} (other processes are stopped), with {@link BaselineError} `EGIT` when git
 * cannot start or did not write a file, or with `signal.reason`. Partly written files stay in `target`,
 * which the caller removes.
 */
export async function checkoutFiles(
  index: ParsedIndex,
  files: Int32Array,
  options: CheckoutOptions,
): Promise<number> {
  const { signal } = options;
  signal?.throwIfAborted();
  if (files.length === 0) return 0;
  const processes = Math.max(
    1,
    Math.min(MAX_PROCESSES, availableParallelism(), Math.floor(files.length / MIN_FILES_PER_PROCESS)),
  );
  // Equal batches, the same number per process, so the processes finish together.
  const batchCount = processes * Math.ceil(files.length / (processes * FILES_PER_BATCH));
  const batches = Array.from({ length: batchCount }, (_, b) =>
    files.slice(
      Math.floor((b * files.length) / batchCount),
      Math.floor(((b + 1) * files.length) / batchCount),
    ),
  );
  for (const batch of batches.slice(1)) {
    const first = entryPath(index, batch[0] as number);
    const slash = first.lastIndexOf(0x2f);
    if (slash > 0) options.makeDirectory(first.subarray(0, slash));
  }

  const stop = new AbortController();
  const stopSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  let next = 0;
  let written = 0;
  let bytes = 0;
  const firstWave = Math.min(processes, batches.length);
  const worker = async () => {
    while (next < batches.length && !stopSignal.aborted) {
      const number = next++;
      const batch = batches[number] as Int32Array;
      const indexFile = join(options.gitDir, `index.${number}`);
      try {
        writeFileSync(indexFile, subIndex(index, batch));
      } catch (error) {
        throw writeError(`.git/index.${number}`, error);
      }
      const running = checkoutBatch(indexFile, options, stopSignal);
      if (number + 1 === firstWave) options.onStarted?.();
      await running;
      bytes += bytesWritten(indexFile, index.oidBytes, batch.length);
      written += batch.length;
      options.onWritten?.(written);
    }
  };
  const results = await Promise.allSettled(
    Array.from({ length: processes }, () =>
      worker().catch((error: unknown) => {
        stop.abort(error);
        throw error;
      }),
    ),
  );
  signal?.throwIfAborted();
  // The first real failure, not the abort it caused in the other processes.
  const failure =
    results.find((r) => r.status === "rejected" && r.reason !== stop.signal.reason) ??
    results.find((r) => r.status === "rejected");
  if (failure?.status === "rejected") throw failure.reason;
  return bytes;
}

/** The bytes of the `count` files one finished process wrote, read from the index it rewrote. */
function bytesWritten(indexFile: string, oidBytes: number, count: number): number {
  const rewritten = parseIndex(readFileSync(indexFile), oidBytes);
  const { bytes, unwritten } = checkedOutBytes(rewritten);
  if (rewritten.count === count && unwritten === undefined) return bytes;
  const what =
    unwritten === undefined
      ? `${count - rewritten.count} of its ${count} files`
      : entryPath(rewritten, unwritten).toString("utf8");
  throw new BaselineError(
    "EGIT",
    `git checkout-index did not write ${what}, which the commit's tree holds; run again, and report it with your \`git --version\` if it persists`,
  );
}

/** One `git checkout-index --index --all` of the index file `indexFile`, which git then rewrites. */
function checkoutBatch(indexFile: string, options: CheckoutOptions, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    // The -c settings repeat what the private repository's attributes and empty configuration already
    // guarantee; workers=1 because the parallelism is ours.
    const child = spawnGit(
      [
        "-c",
        "core.autocrlf=false",
        "-c",
        "core.eol=lf",
        "-c",
        "checkout.workers=1",
        "checkout-index",
        "--index",
        "--all",
      ],
      { cwd: options.target, env: { ...options.env, GIT_INDEX_FILE: indexFile } },
    );
    const stderr: Buffer[] = [];
    let stderrLength = 0;
    let spawnError: Error | undefined;
    const onAbort = () => child.kill();
    signal.addEventListener("abort", onAbort, { once: true });
    child.stdout.resume();
    child.stderr.on("data", (chunk: Buffer) => {
      if (stderrLength < 16 * 1024) stderr.push(chunk);
      stderrLength += chunk.length;
    });
    child.on("error", (error) => {
      spawnError = error;
    });
    child.on("close", (code) => {
      signal.removeEventListener("abort", onAbort);
      if (signal.aborted) reject(signal.reason);
      else if (spawnError) reject(gitSpawnError(spawnError));
      else if (code !== 0) reject(new CheckoutError(parseFailure(Buffer.concat(stderr))));
      else resolve();
    });
    child.stdin.end();
  });
}

/**
 * Reads git's first complaint. Paths are raw bytes in git's messages, so stderr is read as latin1 (one
 * character per byte) to get them back exactly.
 */
function parseFailure(stderr: Buffer): CheckoutFailure {
  const text = stderr.toString("latin1");
  const patterns: [CheckoutFailure["action"], RegExp][] = [
    ["create", /^error: unable to create file (.+?): [^:\n]+$/m],
    ["write", /^error: unable to write file (.+)$/m],
    ["mkdir", /^fatal: cannot create directory at '(.+)': [^:\n]+$/m],
    ["exists", /^(.+) already exists, no checkout$/m],
    ["read", /^error: unable to read sha1 file of (.+) \([0-9a-f]+\)$/m],
  ];
  let first: { index: number; failure: CheckoutFailure } | undefined;
  for (const [action, pattern] of patterns) {
    const match = pattern.exec(text);
    if (match && (first === undefined || match.index < first.index)) {
      first = {
        index: match.index,
        failure: { action, path: Buffer.from(match[1] as string, "latin1"), stderr: "" },
      };
    }
  }
  const failure = first?.failure ?? { action: "other" as const, path: undefined, stderr: "" };
  failure.stderr = Buffer.from(text.trim().split("\n").slice(0, 5).join("\n"), "latin1").toString("utf8");
  return failure;
}
