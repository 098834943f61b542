import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { forChild } from "@cas-stage/test-support/mutation";
import { runnableByOthers } from "@cas-stage/test-support/other-users";
import { readTree, tempDir, writeTree } from "./fixtures.js";

export const WORKER = fileURLToPath(new URL("./stage-worker.mjs", import.meta.url));
export const STAGE_ONCE = fileURLToPath(new URL("./stage-once.mjs", import.meta.url));
export const SCRATCH_OWNER = fileURLToPath(new URL("./scratch-owner.mjs", import.meta.url));

/** The unprivileged user the tests run children as, to get real permission errors while running as root. */
export const NOBODY = { uid: 65534, gid: 65534 };
export const isRoot = process.getuid?.() === 0;

/** Sources for `count` colliding fingerprints, and the sha256 of every file each must stage. */
export function raceSources(count: number, bigFile = 0) {
  const sources: Record<string, string> = {};
  const expected: Record<string, Record<string, string>> = {};
  for (let i = 0; i < count; i++) {
    const files: Record<string, string | Buffer> = {};
    for (let f = 0; f < 40; f++)
      files[`d${f % 4}/e${f % 3}/file-${f}.txt`] = `fp ${i} file ${f}\n`.repeat(f + 1);
    if (bigFile > 0) files["big.bin"] = Buffer.alloc(bigFile, i);
    const dir = writeTree(tempDir(`race-src-${i}`), files);
    const fp = `race-${i}`;
    sources[fp] = dir;
    expected[fp] = {};
    for (const rel of Object.keys(readTree(dir))) {
      if (rel.endsWith("/")) continue;
      expected[fp][rel] = createHash("sha256")
        .update(readFileSync(join(dir, rel)))
        .digest("hex");
    }
  }
  return { sources, expected };
}

export type Line = Record<string, unknown> & { kind?: string };

/**
 * A child process whose stdout is JSON lines: every line it printed so far, a way to wait for one (a
 * ready-line as a barrier), and its exit.
 */
export class LineProcess {
  readonly child: ChildProcess;
  readonly lines: Line[] = [];
  stderr = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #buffered = "";
  #waiters: { match: (line: Line) => boolean; resolve: (line: Line) => void }[] = [];

  constructor(command: string, args: string[], options: SpawnOptions = {}) {
    // Under mutation testing the child runs the active mutant and reports the mutants it reached.
    const bridge = forChild();
    this.child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env: bridge.env, ...options });
    this.child.stdout?.on("data", (chunk: Buffer) => {
      this.#buffered += chunk.toString("utf8");
      for (let newline = this.#buffered.indexOf("\n"); newline >= 0; newline = this.#buffered.indexOf("\n")) {
        const line = JSON.parse(this.#buffered.slice(0, newline)) as Line;
        this.#buffered = this.#buffered.slice(newline + 1);
        this.lines.push(line);
        for (const waiter of this.#waiters.filter((w) => w.match(line))) {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    });
    this.child.stderr?.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString("utf8");
    });
    this.exited = new Promise((resolve) => {
      this.child.on("close", (code, signal) => {
        bridge.collect();
        resolve({ code, signal });
      });
    });
  }

  /** The first line (already printed or yet to come) that `match` accepts; rejects if the child exits first. */
  waitFor(match: (line: Line) => boolean): Promise<Line> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      this.#waiters.push({ match, resolve });
      void this.exited.then(({ code, signal }) =>
        reject(new Error(`child exited (${code ?? signal}) before the awaited line: ${this.stderr}`)),
      );
    });
  }

  send(text: string): void {
    this.child.stdin?.write(`${text}\n`);
  }
}

/** Starts a race worker on a job (see stage-worker.mjs). */
export function startWorker(job: object): LineProcess {
  const jobFile = join(tempDir("job"), "job.json");
  writeFileSync(jobFile, JSON.stringify(job));
  return new LineProcess(process.execPath, [WORKER, jobFile]);
}

/** What stage-once.mjs prints. */
export interface OnceResult {
  path?: string;
  readable?: true | string;
  sentinelMtimeMs?: number;
  sweep?: { removed: string[]; freedBytes: number; totalBytes: number; measuredOnly: boolean };
  error?: { name: string; code: string; path: string; message: string };
  warnings: { message: string; path: string }[];
}

/**
 * Runs stage-once.mjs with `job` (see there), as `user` when given (spawned with its uid and gid; then a copy
 * of the script and the built package that any user can reach, see runnableByOthers), under `command` (e.g.
 * strace) when given, and resolves to what it printed.
 */
export async function stageOnce(
  job: object,
  options: { user?: { uid: number; gid: number }; wrap?: string[] } = {},
): Promise<OnceResult> {
  const script = options.user ? runnableByOthers(STAGE_ONCE) : STAGE_ONCE;
  const argv = [...(options.wrap ?? []), process.execPath, script, JSON.stringify(job)];
  const child = new LineProcess(argv[0] as string, argv.slice(1), options.user ?? {});
  const { code } = await child.exited;
  const [result] = child.lines;
  if (code !== 0 || result === undefined) throw new Error(`stage-once exited ${code}: ${child.stderr}`);
  return result as unknown as OnceResult;
}
