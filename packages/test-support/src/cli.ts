import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** What a finished command printed, and how it ended. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  /** Added to the test's own environment. */
  env?: NodeJS.ProcessEnv;
}

/** Runs `node <script> ...args` to completion, as a shell would. */
export function runCliSync(script: string, args: readonly string[], options: CliOptions = {}): CliRun {
  const result = spawnSync(process.execPath, [script, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    encoding: "utf8",
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * `node <script> ...args` running in a real process: its output so far, a way to wait for some of it (a
 * barrier), its pid for signals, and its end. With `strace`, node runs under `strace -f -qq -o /dev/null
 * <strace>` (e.g. syscall delays that make a copy last seconds), and {@link pid} is node's, not strace's;
 * strace ends with node's exit code.
 */
export class CliProcess {
  readonly child: ChildProcess;
  stdout = "";
  stderr = "";
  readonly exited: Promise<CliRun>;
  readonly #traced: boolean;

  constructor(script: string, args: readonly string[], options: CliOptions & { strace?: string[] } = {}) {
    const command = [process.execPath, script, ...args];
    const [file, ...rest] = options.strace
      ? ["strace", "-f", "-qq", "-o", "/dev/null", ...options.strace, ...command]
      : command;
    this.#traced = options.strace !== undefined;
    this.child = spawn(file as string, rest, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout?.setEncoding("utf8").on("data", (text: string) => {
      this.stdout += text;
    });
    this.child.stderr?.setEncoding("utf8").on("data", (text: string) => {
      this.stderr += text;
    });
    this.exited = new Promise((resolve) => {
      this.child.on("close", (code, signal) =>
        resolve({ code: code ?? (signal ? -1 : null), stdout: this.stdout, stderr: this.stderr }),
      );
    });
  }

  /** Resolves once what the process wrote to stderr matches `pattern`; rejects if it exits first. */
  async waitForStderr(pattern: RegExp): Promise<void> {
    return this.#waitFor(() => pattern.test(this.stderr), `stderr matching ${pattern}`);
  }

  /** Resolves once `ready()` holds (polled); rejects if the process exits first. */
  async waitUntil(ready: () => boolean, what: string): Promise<void> {
    return this.#waitFor(ready, what);
  }

  /** The pid of the node process (under strace, strace's child). */
  async pid(): Promise<number> {
    const own = this.child.pid as number;
    if (!this.#traced) return own;
    for (;;) {
      const children = readFileSync(`/proc/${own}/task/${own}/children`, "utf8").trim();
      if (children) return Number(children.split(" ")[0]);
      await sleep(5);
    }
  }

  /** Sends `signal` to the node process. */
  async kill(signal: NodeJS.Signals): Promise<void> {
    process.kill(await this.pid(), signal);
  }

  async #waitFor(ready: () => boolean, what: string): Promise<void> {
    let done = false;
    const ended = this.exited.then(() => {
      if (!done && !ready()) throw new Error(`the process ended before ${what}:\n${this.stderr}`);
    });
    ended.catch(() => {});
    while (!ready()) {
      await Promise.race([sleep(10), ended]);
    }
    done = true;
  }
}
