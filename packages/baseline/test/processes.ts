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
