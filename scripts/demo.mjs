#!/usr/bin/env node
// `npm run demo`: several processes race to build the same cache slot at the same moment.
// Exactly one of them wins the atomic rename and "built" the slot; every other one finds the finished
// slot, throws its own copy away and "adopted" the winner's. Nobody ever sees a half-written slot.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

const PROCESSES = 6;
const FILES = 300;
const casEntry = new URL("../packages/cas/dist/index.js", import.meta.url);

if (process.argv[2] === "--worker") {
  // One racer: wait for the starting gun, then stage the shared slot.
  const [, , , parent, go] = process.argv;
  const { stage } = await import(casEntry.href);
  while (!existsSync(go)) await sleep(1);
  const final = join(parent, "slot");
  const started = performance.now();
  const { adopted } = await stage({
    parent,
    final,
    build: async (staging) => {
      await mkdir(join(staging, "files"));
      for (let i = 0; i < FILES; i++)
        await writeFile(join(staging, "files", `${i}.txt`), `built by ${process.pid}\n`);
    },
    adopt: async () => (await lstat(final).catch(() => undefined))?.isDirectory() ?? false,
  });
  process.stdout.write(JSON.stringify({ pid: process.pid, adopted, ms: performance.now() - started }));
} else {
  const parent = await mkdtemp(join(tmpdir(), "cas-stage-demo-"));
  const go = join(parent, "go");
  console.log(`${PROCESSES} processes race to build the same slot (${FILES} files) in ${parent}\n`);
  const racers = Array.from({ length: PROCESSES }, () => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "--worker", parent, go], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
    });
    return new Promise((resolve, reject) => {
      child.on("close", (code) =>
        code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`racer exited ${code}`)),
      );
    });
  });
  await sleep(300); // let every process start and reach the starting line
  await writeFile(go, "");
  const results = await Promise.all(racers);
  for (const { pid, adopted, ms } of results) {
    const what = adopted
      ? "adopted the winner's slot (its own copy was discarded)"
      : "BUILT the slot (won the rename)";
    console.log(`  process ${String(pid).padEnd(7)} ${what.padEnd(58)} ${ms.toFixed(1).padStart(7)} ms`);
  }
  const files = await readdir(join(parent, "slot", "files"));
  const leftovers = (await readdir(parent)).filter((name) => name.includes(".tmp."));
  const builders = results.filter((r) => !r.adopted).length;
  console.log(
    `\n${builders} process built the slot, ${PROCESSES - builders} adopted it; the slot holds ${files.length} files, ` +
      `${leftovers.length} temp dirs are left over.`,
  );
  await rm(parent, { recursive: true, force: true });
  if (builders !== 1 || files.length !== FILES || leftovers.length !== 0) process.exit(1);
}
