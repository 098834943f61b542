import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { forChild } from "@cas-stage/test-support/mutation";
import { CLAIM, SENTINEL } from "./entries.js";

export const ENTRY_WORKER = join(import.meta.dirname, "workers", "entry-worker.mjs");

/** One line a worker printed (see workers/entry-worker.mjs). */
export interface EntryEvent {
  event: "ready" | "at" | "done" | "error" | "warning";
  op?: string;
  name?: string;
  hook?: string;
  slot?: string;
  trash?: string;
  check?: string;
  outcome?: string;
  message?: string;
  path?: string;
  [key: string]: unknown;
}

export interface WorkerConfig {
  root: string;
  /** The worker's umask, set before it does anything. */
  umask?: number;
  claimGraceMs?: number;
  pauseAt?: string[];
  ready?: boolean;
  calls?: Array<{ op: string; name: string; [key: string]: unknown }>;
  role?: { kind: string; names: string[]; iterations: number; seed: number };
}

export interface EntryProcess {
  child: ChildProcess;
  events: EntryEvent[];
  /** Resolves with the exit signal (or null) once the process has exited and its output is read. */
  exited: Promise<NodeJS.Signals | null>;
  /** The first event (already seen or still to come) that `matches`; rejects if the process exits first. */
  waitFor: (matches: (event: EntryEvent) => boolean) => Promise<EntryEvent>;
  /** Writes a line to the worker's stdin ("go" after ready, anything to leave a hook). */
  send: (line: string) => void;
}

/** Syscall tracing with injected delays, to hold a worker inside a window between two syscalls. */
export interface StraceOptions {
  /** Syscalls to trace, e.g. "rename,renameat,renameat2,rmdir". */
  trace: string;
  /**
   * Delays, each "<syscalls>:delay_enter=<µs>" or "<syscalls>:delay_exit=<µs>". With delay_enter the traced
   * line appears before the call runs; with delay_exit it appears with its result, before the call returns.
   */
  inject: string[];
  /** Where strace writes its trace. */
  output: string;
  /** When given, only syscalls naming one of these paths are traced (and delayed): strace's `-P`. */
  paths?: string[];
}

export const RENAME = "rename,renameat,renameat2";
export const MKDIR = "mkdir,mkdirat";
export const RMDIR = "rmdir";

export function startEntryWorker(config: WorkerConfig, strace?: StraceOptions): EntryProcess {
  const full = { sentinel: SENTINEL, claim: CLAIM, ...config };
  const node = [process.execPath, ENTRY_WORKER, JSON.stringify(full)];
  const [command, ...args] = strace
    ? [
        "strace",
        "-f",
        "-qq",
        "-o",
        strace.output,
        "-e",
        `trace=${strace.trace}`,
        ...strace.inject.flatMap((spec) => ["-e", `inject=${spec}`]),
        ...(strace.paths ?? []).flatMap((path) => ["-P", path]),
        ...node,
      ]
    : node;
  const bridge = forChild();
  const child = spawn(command as string, args, { stdio: ["pipe", "pipe", "inherit"], env: bridge.env });
  const events: EntryEvent[] = [];
  const listeners = new Set<() => void>();
  let ended = false;
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  lines.on("line", (line) => {
    events.push(JSON.parse(line) as EntryEvent);
    for (const listener of listeners) listener();
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (_code, signal) => {
      bridge.collect();
      ended = true;
      for (const listener of listeners) listener();
      resolve(signal);
    });
  });
  const waitFor = (matches: (event: EntryEvent) => boolean) =>
    new Promise<EntryEvent>((resolve, reject) => {
      const look = () => {
        const found = events.find(matches);
        if (found) {
          listeners.delete(look);
          resolve(found);
        } else if (ended) {
          listeners.delete(look);
          reject(new Error(`worker exited before the awaited event; it printed ${JSON.stringify(events)}`));
        }
      };
      listeners.add(look);
      look();
    });
  const send = (line: string) => {
    child.stdin?.write(`${line}\n`);
  };
  return { child, events, exited, waitFor, send };
}

/**
 * Waits until strace's output holds a line matching `pattern` (the traced worker is then inside the delay
 * that follows it), and returns that line. A state barrier, not a timing guess; gives up after `limitMs`.
 */
export async function waitForTrace(output: string, pattern: RegExp, limitMs = 30_000): Promise<string> {
  const start = Date.now();
  for (;;) {
    const text = await readFile(output, "utf8").catch(() => "");
    const line = text.split("\n").find((l) => pattern.test(l));
    if (line) return line;
    if (Date.now() - start > limitMs) throw new Error(`no trace line matched ${pattern} in:\n${text}`);
    await sleep(2);
  }
}

/** Polls `condition` until it holds (a state barrier); gives up after `limitMs`. */
export async function until(
  condition: () => Promise<boolean>,
  what: string,
  limitMs = 30_000,
): Promise<void> {
  const start = Date.now();
  while (!(await condition())) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting until ${what}`);
    await sleep(2);
  }
}

/** Escapes a path for use inside a RegExp matching strace's quoted arguments. */
export function quoted(path: string): string {
  return `"${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`;
}
