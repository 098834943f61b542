import { type ChildProcess, spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { forChild } from "@cas-stage/test-support/mutation";

export const WORKER = join(import.meta.dirname, "workers", "stage-worker.mjs");

export interface WorkerEvent {
  event: "building" | "staged" | "error";
  slot: string;
  adopted?: boolean;
  message?: string;
  code?: string;
}

export interface Worker {
  child: ChildProcess;
  events: WorkerEvent[];
  /** Resolves with the exit signal (or null) once the process has exited and its output is read. */
  exited: Promise<NodeJS.Signals | null>;
  /** Called for each event as it arrives. */
  onEvent?: (event: WorkerEvent) => void;
}

export function startWorker(args: string[]): Worker {
  const bridge = forChild();
  const child = spawn(process.execPath, [WORKER, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
    env: bridge.env,
  });
  const worker: Worker = { child, events: [], exited: Promise.resolve(null) };
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  lines.on("line", (line) => {
    const event = JSON.parse(line) as WorkerEvent;
    worker.events.push(event);
    worker.onEvent?.(event);
  });
  worker.exited = new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (_code, signal) => {
      bridge.collect();
      resolve(signal);
    });
  });
  return worker;
}

/** Whether `slotDir` holds exactly the tree the worker builds for `slot`. */
export async function isCompleteTree(slotDir: string, slot: string, files: number): Promise<boolean> {
  const names = await readdir(join(slotDir, "d"));
  if (names.length !== files) return false;
  for (let i = 0; i < files; i++) {
    const content = await readFile(join(slotDir, "d", `f${i}`), "utf8");
    if (content !== `${slot}:${i}\n`.repeat(64)) return false;
  }
  return true;
}
