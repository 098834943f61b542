import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { BaselineResult } from "../src/index.js";
import { cacheNames, listTree, makeTempDir, originAndClone, removeTempDirs, testTmpDir } from "./fixtures.js";

afterEach(removeTempDirs);

const WORKER = fileURLToPath(new URL("./race-worker.mjs", import.meta.url));
const CONTENDERS = 8;

interface Contender {
  ready: Promise<void>;
  go: () => void;
  done: Promise<BaselineResult>;
}

/** A real node process that materializes once it is told to go (the barrier). */
function contender(path: string, cacheRoot: string): Contender {
  const child = spawn(process.execPath, [WORKER, path, cacheRoot], { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  child.stdout.setEncoding("utf8").on("data", (text: string) => {
    stdout += text;
    if (stdout.startsWith("ready\n")) markReady();
  });
  child.stderr.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  const done = new Promise<BaselineResult>((resolve, reject) => {
    child.on("close", (code) => {
      if (code !== 0) reject(new Error(`contender exited ${code}: ${stderr}`));
      else resolve(JSON.parse(stdout.slice("ready\n".length)) as BaselineResult);
    });
  });
  return { ready, go: () => child.stdin.end("go\n"), done };
}

describe("concurrent processes", () => {
  it("8 processes materializing one commit into one cache agree on one slot built exactly once", async () => {
    const { repo, first } = originAndClone();
    for (let i = 0; i < 200; i++) repo.write(`tree/${i % 10}/file-${i}.txt`, `content ${i}\n`);
    repo.git("add", "--all");
    repo.git("commit", "--quiet", "-m", "many files");
    repo.git("push", "--quiet", "origin", "main");
    repo.write("local.txt", "local\n");
    repo.commit("local");
    const base = repo.git("rev-parse", "origin/main");
    expect(base).not.toBe(first);
    const cacheRoot = makeTempDir("cache");

    const contenders = Array.from({ length: CONTENDERS }, () => contender(repo.dir, cacheRoot));
    await Promise.all(contenders.map((c) => c.ready));
    for (const c of contenders) c.go();
    const results = await Promise.all(contenders.map((c) => c.done));

    const slot = join(cacheRoot, "baselines", base);
    expect(new Set(results.map((r) => r.dir))).toEqual(new Set([slot]));
    expect(results.filter((r) => r.cache === "built")).toHaveLength(1);
    for (const r of results) expect(["built", "adopted", "hit"]).toContain(r.cache);

    const files = listTree(slot).filter((p) => p.startsWith("tree/") && !p.endsWith("/"));
    expect(files).toHaveLength(200);
    expect(readFileSync(join(slot, "tree", "7", "file-17.txt"), "utf8")).toBe("content 17\n");
    expect(cacheNames(cacheRoot)).toEqual([base]);
    expect(readdirSync(testTmpDir).filter((n) => n.startsWith("cas-baseline-"))).toEqual([]);
  });
});
