import { type ChildProcessByStdio, spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { BaselineError } from "./errors.js";

/** How to run one git command. */
export interface GitRunOptions {
  cwd?: string | undefined;
  /** The environment: one of the profiles of `git-env.ts`. */
  env: NodeJS.ProcessEnv;
  /** Written to git's stdin, which is then closed. Without it stdin is closed at once. */
  input?: Buffer | string | undefined;
  /** Kills git and rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
}

/** What a finished git command printed. */
export interface GitOutput {
  stdout: Buffer;
  stderr: string;
  /** The exit code; null when a signal ended git. */
  code: number | null;
}

/** Only the start of git's stderr is kept: it holds the explanation, the rest is repetition. */
const STDERR_LIMIT = 16 * 1024;

/** A git command that failed; `stderr` is git's own explanation, `cause` the spawn error if any. */
export class GitCommandError extends Error {
  readonly stderr: string;
  readonly exitCode: number | null;

  constructor(what: string, output: { stderr: string; code: number | null }, options?: { cause?: unknown }) {
    const detail = output.stderr.trim();
    super(detail ? `${what}: ${detail}` : what, options);
    this.name = "GitCommandError";
    this.stderr = detail;
    this.exitCode = output.code;
  }
}

/**
 * Starts git with stdin, stdout and stderr as pipes, for callers that stream. A missing git binary is
 * reported as {@link BaselineError} `EGIT` by {@link gitSpawnError} when the caller awaits the exit.
 */
export function spawnGit(
  args: readonly string[],
  options: Pick<GitRunOptions, "cwd" | "env">,
): ChildProcessByStdio<Writable, Readable, Readable> {
  const child = spawn("git", args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ["pipe", "pipe", "pipe"],
    windowsHide: true,
  });
  // git may exit before reading all of its input (a bad repository); that is reported by its exit code.
  child.stdin.on("error", () => {});
  return child;
}

/**
 * Runs git to completion and returns what it printed, whatever its exit code. Rejects only when git
 * cannot be started ({@link BaselineError} `EGIT`) or `signal` aborts (with `signal.reason`).
 */
export function runGit(args: readonly string[], options: GitRunOptions): Promise<GitOutput> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const child = spawnGit(args, options);
    const out: Buffer[] = [];
    let stderr = "";
    let spawnError: Error | undefined;
    const onAbort = () => child.kill();
    signal?.addEventListener("abort", onAbort, { once: true });
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (text: string) => {
      if (stderr.length < STDERR_LIMIT) stderr += text;
    });
    child.on("error", (error) => {
      spawnError = error;
    });
    child.on("close", (code) => {
      signal?.removeEventListener("abort", onAbort);
      if (signal?.aborted) reject(signal.reason);
      else if (spawnError) reject(gitSpawnError(spawnError));
      else resolve({ stdout: Buffer.concat(out), stderr, code });
    });
    child.stdin.end(options.input);
  });
}

/**
 * Runs git and returns its stdout as text without the final newline; a non-zero exit throws
 * {@link GitCommandError} naming the command, with git's stderr.
 */
export async function gitText(args: readonly string[], options: GitRunOptions): Promise<string> {
  const result = await runGit(args, options);
  if (result.code !== 0) throw new GitCommandError(`git ${args.join(" ")} failed`, result);
  return result.stdout.toString("utf8").replace(/\n$/, "");
}

/** The error for a git that could not be started: usually not installed, or not on PATH. */
export function gitSpawnError(error: Error): BaselineError {
  const code = (error as NodeJS.ErrnoException).code;
  return new BaselineError(
    "EGIT",
    code === "ENOENT"
      ? `git is not installed or not on PATH (${error.message}); install git ${MINIMUM_GIT} or later`
      : `cannot start git: ${error.message}`,
    { cause: error },
  );
}

/** The oldest git this package works with: `rev-parse --path-format` appeared in 2.31. */
export const MINIMUM_GIT = "2.31";

let versionCheck: Promise<void> | undefined;

/**
 * Checks once per process that git is at least {@link MINIMUM_GIT}; later calls share the first answer.
 * Throws {@link BaselineError} `EGITVERSION` naming the version found, or `EGIT` when git cannot run.
 */
export function checkGitVersion(signal?: AbortSignal): Promise<void> {
  versionCheck ??= readGitVersion(signal).catch((error: unknown) => {
    // An abort says nothing about git: let the next call ask again.
    versionCheck = undefined;
    throw error;
  });
  return versionCheck;
}

async function readGitVersion(signal: AbortSignal | undefined): Promise<void> {
  const { stdout } = await runGit(["version"], { env: { ...process.env, LC_ALL: "C" }, signal });
  const text = stdout.toString("utf8").trim();
  const match = /(\d+)\.(\d+)/.exec(text);
  const [major, minor] = MINIMUM_GIT.split(".").map(Number) as [number, number];
  if (match && (Number(match[1]) > major || (Number(match[1]) === major && Number(match[2]) >= minor)))
    return;
  throw new BaselineError(
    "EGITVERSION",
    `${text || "git"} is too old: @cas-stage/baseline needs git ${MINIMUM_GIT} or later (for rev-parse --path-format); upgrade git`,
  );
}
