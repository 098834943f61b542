import { spawn } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export const WORKERS = join(import.meta.dirname, "workers");

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node <script> ...args` in a real process, optionally under `strace -f` with the given options
 * (`-e inject=…` widens a race window in that process only). Resolves once it has exited.
 */
export function runNode(
  script: string,
  args: string[],
  options: { strace?: string[] } = {},
): Promise<Finished> {
  const [command, argv] = options.strace
    ? ["strace", ["-f", "-qq", "-o", "/dev/null", ...options.strace, process.execPath, script, ...args]]
    : [process.execPath, [script, ...args]];
  const child = spawn(command as string, argv as string[], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (text: string) => {
    stdout += text;
  });
  child.stderr.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Polls `condition` until it holds: a barrier on state another process makes. Throws after `timeoutMs`. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(2);
  }
}

export interface CacheWorker {
  /** Every JSON line the worker printed so far. */
  events: Record<string, unknown>[];
  /** Resolves once the process has exited and its output is read. */
  exited: Promise<Finished>;
  /** Resolves with the first event that satisfies `match` (rejects if the worker exits first). */
  reached: (match: (event: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>;
  kill: () => void;
}

/** Starts `workers/cache-worker.mjs <role> <cacheRoot> <config>` (see that file) in a real process. */
export function startCacheWorker(role: string, cacheRoot: string, config: object): CacheWorker {
  const child = spawn(
    process.execPath,
    [join(WORKERS, "cache-worker.mjs"), role, cacheRoot, JSON.stringify(config)],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const events: Record<string, unknown>[] = [];
  const waiting: {
    match: (event: Record<string, unknown>) => boolean;
    resolve: (event: Record<string, unknown>) => void;
  }[] = [];
  let stdout = "";
  let pending = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (text: string) => {
    stdout += text;
    pending += text;
    for (let newline = pending.indexOf("\n"); newline >= 0; newline = pending.indexOf("\n")) {
      const event = JSON.parse(pending.slice(0, newline)) as Record<string, unknown>;
      pending = pending.slice(newline + 1);
      events.push(event);
      for (const waiter of waiting.filter((w) => w.match(event))) {
        waiting.splice(waiting.indexOf(waiter), 1);
        waiter.resolve(event);
      }
    }
  });
  child.stderr.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  const exited = new Promise<Finished>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    events,
    exited,
    reached: (match) => {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return Promise.race([
        new Promise<Record<string, unknown>>((resolve) => waiting.push({ match, resolve })),
        exited.then((finished) => {
          throw new Error(
            `${role} worker exited (${finished.code ?? finished.signal}) first: ${finished.stderr}`,
          );
        }),
      ]);
    },
    kill: () => child.kill("SIGKILL"),
  };
}
