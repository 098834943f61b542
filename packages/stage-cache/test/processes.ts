import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readTree, tempDir, writeTree } from "./fixtures.js";

export const WORKER = fileURLToPath(new URL("./stage-worker.mjs", import.meta.url));

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

export interface WorkerReport {
  calls: number;
  failures: { fp: string; problem: string; sinceReturnMs: number }[];
  evicted: number;
}

/** Starts a worker on a job; `done` resolves to its report (or undefined when it was killed). */
export function startWorker(job: object): { child: ChildProcess; done: Promise<WorkerReport | undefined> } {
  const jobFile = join(tempDir("job"), "job.json");
  writeFileSync(jobFile, JSON.stringify(job));
  const child = spawn(process.execPath, [WORKER, jobFile], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk) => (stdout += chunk));
  child.stderr?.on("data", (chunk) => (stderr += chunk));
  const done = new Promise<WorkerReport | undefined>((resolve, reject) => {
    child.on("close", (code, signal) => {
      if (signal === "SIGKILL") return resolve(undefined);
      if (code !== 0) return reject(new Error(`worker exited ${code}: ${stderr}`));
      resolve(JSON.parse(stdout) as WorkerReport);
    });
  });
  return { child, done };
}
