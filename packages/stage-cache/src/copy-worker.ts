// The entry point of a copy worker thread (see `CopyWorkers`): copies each file of a batch, in order,
// with the function the main thread uses. It claims each job in shared memory before starting it (the
// main thread may have taken it back), counts it done there at once, and answers with the sizes and
// hashes once the batch is through.
import { parentPort, workerData } from "node:worker_threads";
import { type BytePath, joinPath } from "./byte-path.js";
import {
  ANSWER_BYTES,
  type BatchMessage,
  JOB_HEADER_BYTES,
  TAKEN_BY_WORKER,
  WAITING,
  type WorkerMessage,
  type WorkerShared,
} from "./copy-workers.js";
import { StageCacheError } from "./errors.js";
import type { FileContent, SourceFile } from "./file-content.js";
import { copyFileContent } from "./file-copy.js";

const { done, claims } = workerData as WorkerShared;

interface Job {
  slot: number;
  source: SourceFile;
  target: BytePath;
}

type Answer = Exclude<WorkerMessage, { ready: true }>;

parentPort?.on("message", (batch: BatchMessage) => {
  const jobs = readBatch(batch);
  const answers = Buffer.alloc(jobs.length * ANSWER_BYTES);
  const answer: Answer = { answers: answers.buffer as ArrayBuffer, failures: [], skipped: [] };
  const record = (index: number, error: unknown, content: FileContent | undefined) => {
    if (error === undefined && content !== undefined) {
      answers.writeDoubleLE(content.size, index * ANSWER_BYTES);
      answers.write(content.hash, index * ANSWER_BYTES + 8, "hex");
    } else {
      answer.failures.push({ index, ...describe(error) });
    }
    Atomics.add(done, 0, 1);
  };
  const skip = (index: number) => {
    answer.skipped.push(index);
    Atomics.add(done, 0, 1);
  };
  copyFrom(jobs, 0, record, skip, () => parentPort?.postMessage(answer, [answer.answers]));
});
const ready: WorkerMessage = { ready: true };
parentPort?.postMessage(ready);

function readBatch({ targetRoot, jobs, length }: BatchMessage): Job[] {
  const bytes = Buffer.from(jobs, 0, length);
  const out: Job[] = [];
  for (let at = 0; at < length; ) {
    const slot = bytes.readUInt32LE(at);
    const fd = bytes.readUInt32LE(at + 4);
    const mode = bytes.readUInt32LE(at + 8);
    const size = bytes.readDoubleLE(at + 12);
    const blocks = bytes.readDoubleLE(at + 20);
    const sourceLength = bytes.readUInt32LE(at + 28);
    const relLength = bytes.readUInt32LE(at + 32);
    at += JOB_HEADER_BYTES;
    const path = bytes.toString("latin1", at, at + sourceLength) as BytePath;
    const rel = bytes.toString("latin1", at + sourceLength, at + sourceLength + relLength) as BytePath;
    at += sourceLength + relLength;
    out.push({
      slot,
      source: { fd, stats: { size, blocks, mode }, path },
      target: joinPath(targetRoot, rel),
    });
  }
  return out;
}

/**
 * Copies jobs[index…] one after the other (a copy may finish synchronously or later), skipping those the
 * main thread took back, then calls `end`.
 */
function copyFrom(
  jobs: Job[],
  index: number,
  record: (index: number, error: unknown, content: FileContent | undefined) => void,
  skip: (index: number) => void,
  end: () => void,
): void {
  for (let next = index; next < jobs.length; next++) {
    const job = jobs[next] as Job;
    if (Atomics.compareExchange(claims, job.slot, WAITING, TAKEN_BY_WORKER) !== WAITING) {
      skip(next);
      continue;
    }
    let returned = false;
    let finished = false;
    copyFileContent(job.source, job.target, undefined, (error, content) => {
      record(next, error, content);
      finished = true;
      if (returned) copyFrom(jobs, next + 1, record, skip, end);
    });
    returned = true;
    if (!finished) return;
  }
  end();
}

function describe(error: unknown): { code: string; message: string; path: string | undefined } {
  const failure = error instanceof StageCacheError ? error : undefined;
  return {
    code: failure?.code ?? "EIO",
    message: error instanceof Error ? error.message : String(error),
    path: failure?.path,
  };
}
