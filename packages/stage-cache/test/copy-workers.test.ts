// Copies shared with worker threads give exactly what copies on the main thread give. Worker threads run
// the built package (dist/), as users do; the TypeScript sources cannot run in a worker, so this file
// imports dist (rebuild first) and compares it with src, which copies on the main thread only.
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  closeSync,
  cpSync,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { bytePathOfText } from "../src/byte-path.js";
import { copyTree as copyHere } from "../src/copy.js";
import { readTree, tempDir, writeTree } from "./fixtures.js";

const dist = (await import(
  new URL("../dist/copy.js", import.meta.url).href
)) as typeof import("../src/copy.js");
const { CopyWorkers } = (await import(
  new URL("../dist/copy-workers.js", import.meta.url).href
)) as typeof import("../src/copy-workers.js");

/** A tree with every kind of file a copy must get right. */
function variedTree(): string {
  const files: Record<string, string | Buffer | [string | Buffer, number]> = {};
  for (let i = 0; i < 400; i++) files[`d${i % 9}/e${i % 4}/f${i}.txt`] = `file ${i}\n`.repeat(i % 50);
  files["bin/run.sh"] = ["#!/bin/sh\n", 0o755];
  files["private.key"] = ["k", 0o600];
  files["read-only"] = ["r", 0o444];
  files["multi-chunk.bin"] = Buffer.alloc(3 * 65536 + 17, 5);
  files["zeros-then-data.bin"] = Buffer.concat([Buffer.alloc(65536 * 2), Buffer.from("data")]);
  files.empty = "";
  const source = writeTree(tempDir("src"), files);
  writeFileSync(Buffer.concat([Buffer.from(`${source}/`), Buffer.from([0x66, 0xff])]), "latin-1 name");
  if (process.getuid?.() === 0) {
    chownSync(join(source, "bin/run.sh"), 65534, 65534);
    chmodSync(join(source, "bin/run.sh"), 0o4755);
  }
  // Files with holes: a small one (a worker takes it) and one above the workers' size limit.
  for (const [name, size] of [
    ["holes-small", 4 * 1024 * 1024],
    ["holes-large", 40 * 1024 * 1024],
  ] as const) {
    execFileSync("truncate", ["-s", String(size), join(source, name)]);
    const fd = openSync(join(source, name), "r+");
    writeSync(fd, Buffer.from("island"), 0, 6, 1024 * 1024 + 1);
    closeSync(fd);
  }
  return source;
}

function openBelow(dir: string): string[] {
  return readdirSync("/proc/self/fd").flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return target.startsWith(dir) ? [target] : [];
    } catch {
      return [];
    }
  });
}

describe("copies shared with worker threads", () => {
  const mounted: string[] = [];
  afterEach(() => {
    for (const dir of mounted.splice(0)) execFileSync("umount", ["-l", dir]);
  });

  it("are byte for byte, bit for bit and hole for hole what the main thread alone copies", async () => {
    const source = variedTree();
    const pool = CopyWorkers.shared();
    expect(pool).toBeDefined();
    // On a loaded machine a copy this small could end before a worker has even started.
    await pool?.ready();
    const givenBefore = pool?.given ?? 0;
    const shared = tempDir("shared");
    const recordShared = await dist.copyTree(source, shared, { startWorkersAfter: 1 });
    expect((pool?.given ?? 0) - givenBefore).toBeGreaterThan(100);
    const alone = tempDir("alone");
    const recordAlone = await copyHere(source, alone, { startWorkersAfter: Number.POSITIVE_INFINITY });

    expect(recordShared.digest).toBe(recordAlone.digest);
    expect(recordShared.entries).toEqual(recordAlone.entries);
    expect(readTree(shared, { withModes: true })).toEqual(readTree(alone, { withModes: true }));
    expect(readTree(shared, { withModes: true })).toEqual(readTree(source, { withModes: true }));
    for (const name of ["holes-small", "holes-large"]) {
      expect(statSync(join(shared, name)).blocks * 512, name).toBeLessThan(256 * 1024);
      expect(readFileSync(join(shared, name)).equals(readFileSync(join(source, name))), name).toBe(true);
    }
    expect(statSync(join(shared, "read-only")).mode & 0o777).toBe(0o444);
    if (process.getuid?.() === 0) expect(statSync(join(shared, "bin/run.sh")).mode & 0o7777).toBe(0o755);
    expect(openBelow(source)).toEqual([]);
  });

  it("share a small tree's copy from its first file once the workers run, without being asked", async () => {
    const pool = CopyWorkers.shared();
    await pool?.ready();
    const givenBefore = pool?.given ?? 0;
    const source = variedTree();
    const target = tempDir("copy");
    // Default options: far fewer files than START_WORKERS_AFTER, but the pool is already running.
    await dist.copyTree(source, target);
    expect((pool?.given ?? 0) - givenBefore).toBeGreaterThan(0);
    expect(readTree(target, { withModes: true })).toEqual(readTree(source, { withModes: true }));
    expect(openBelow(source)).toEqual([]);
  });

  it("fall back to the main thread for every job when a worker dies", async () => {
    // A broken install: a private copy of dist whose worker module throws as it loads.
    const broken = tempDir("broken-dist");
    cpSync(new URL("../dist", import.meta.url), join(broken, "dist"), { recursive: true });
    writeFileSync(join(broken, "package.json"), '{ "type": "module" }');
    // The copy imports @cas-stage/cas like the real one: resolve it from this package's dependencies.
    symlinkSync(fileURLToPath(new URL("../node_modules", import.meta.url)), join(broken, "node_modules"));
    // It says it is ready, then dies on its first batch, holding jobs.
    writeFileSync(
      join(broken, "dist", "copy-worker.js"),
      [
        'import { parentPort } from "node:worker_threads";',
        "parentPort.postMessage({ ready: true });",
        'parentPort.on("message", () => { throw new Error("broken worker"); });',
      ].join("\n"),
    );
    const { copyTree } = (await import(pathToFileURL(join(broken, "dist", "copy.js")).href)) as typeof dist;
    const brokenWorkers = (await import(pathToFileURL(join(broken, "dist", "copy-workers.js")).href)) as {
      CopyWorkers: typeof CopyWorkers;
    };
    const pool = brokenWorkers.CopyWorkers.shared();
    await pool?.ready();
    const source = variedTree();
    const target = tempDir("copy");
    const record = await copyTree(source, target, { startWorkersAfter: 1 });
    expect(readTree(target, { withModes: true })).toEqual(readTree(source, { withModes: true }));
    expect(record.files).toBe(Object.keys(readTree(source)).filter((rel) => !rel.endsWith("/")).length);
    expect(pool?.given).toBeGreaterThan(0);
    expect(openBelow(source)).toEqual([]);
  });

  it("fail with what onProgress throws when a worker's answer reports the file", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++) files[`f${i}`] = `${i}`;
    const source = writeTree(tempDir("src"), files);
    const copied = dist.copyTree(source, tempDir("copy"), {
      startWorkersAfter: 1,
      onProgress: ({ files: done }) => {
        if (done === 250) throw new Error("progress failed");
      },
    });
    await expect(copied).rejects.toThrow("progress failed");
    expect(openBelow(source)).toEqual([]);
  });

  it("give back jobs a worker has not started, copied once each, by the main thread", async () => {
    const pool = CopyWorkers.shared();
    await pool?.ready();
    const count = 40;
    const files: Record<string, string> = {};
    for (let i = 0; i < count; i++) files[`f${i}`] = `content ${i}\n`.repeat(i + 1);
    const source = writeTree(tempDir("src"), files);
    const target = bytePathOfText(tempDir("copy"));
    const answers = new Map<number, number>();
    const opened: number[] = [];
    const finished = new Promise<void>((resolve, reject) => {
      for (let i = 0; i < count; i++) {
        const fd = openSync(join(source, `f${i}`), "r");
        opened.push(fd);
        const file = { fd, stats: fstatSync(fd), path: bytePathOfText(join(source, `f${i}`)) };
        const taken = pool?.offer(file, target, bytePathOfText(`f${i}`), (error, content) => {
          if (error !== undefined) return reject(error);
          answers.set(i, (answers.get(i) ?? 0) + 1);
          expect(content?.size).toBe(`content ${i}\n`.length * (i + 1));
          if ([...answers.values()].reduce((a, b) => a + b, 0) === count) resolve();
        });
        expect(taken).toBe(true);
      }
    });
    // The last jobs are still in the batch not yet sent: they are given back at once, newest first.
    const before = pool?.takenBack ?? 0;
    expect(pool?.help()).toBe(true);
    expect(pool?.help()).toBe(true);
    expect((pool?.takenBack ?? 0) - before).toBe(2);
    await finished;
    await new Promise((resolve) => setTimeout(resolve, 50)); // any second answer would arrive meanwhile
    expect([...answers.values()]).toEqual(Array(count).fill(1));
    for (const fd of opened) closeSync(fd);
    expect(readTree(target)).toEqual(readTree(source));
  });

  it("send each job to its own copy's target, also when two copies fill one batch", async () => {
    const pool = CopyWorkers.shared();
    await pool?.ready();
    const source = writeTree(tempDir("src"), { a: "for a", b: "for b" });
    const [toA, toB] = [tempDir("to-a"), tempDir("to-b")];
    const fds = ["a", "b"].map((name) => openSync(join(source, name), "r"));
    await Promise.all(
      ["a", "b"].map(
        (name, index) =>
          new Promise<void>((resolve, reject) => {
            const fd = fds[index] as number;
            const file = { fd, stats: fstatSync(fd), path: bytePathOfText(join(source, name)) };
            const root = bytePathOfText(index === 0 ? toA : toB);
            const taken = pool?.offer(file, root, bytePathOfText(name), (error) =>
              error === undefined ? resolve() : reject(error),
            );
            expect(taken).toBe(true);
          }),
      ),
    );
    for (const fd of fds) closeSync(fd);
    expect(readTree(toA)).toEqual(readTree(writeTree(tempDir("expected"), { a: "for a" })));
    expect(readTree(toB)).toEqual(readTree(writeTree(tempDir("expected"), { b: "for b" })));
  });

  it("work in a process started with flags a worker cannot take (node --input-type=module -e)", () => {
    const entry = new URL("../dist/copy-workers.js", import.meta.url).href;
    const script = `
      const { CopyWorkers } = await import(${JSON.stringify(entry)});
      const pool = CopyWorkers.shared();
      // An idle worker does not keep a process alive: this one waits for it on purpose.
      const keepAlive = setInterval(() => {}, 1000);
      await pool.ready();
      clearInterval(keepAlive);
      const fs = await import("node:fs");
      const fd = fs.openSync(process.execPath, "r");
      const target = fs.mkdtempSync("/tmp/flags-");
      const file = { fd, stats: { size: 10, blocks: 8, mode: 0o644 }, path: "x" };
      const answer = await new Promise((resolve) => {
        if (!pool.offer(file, target, "copied", (error) => resolve(error?.message ?? "copied")))
          resolve("not taken");
      });
      fs.rmSync(target, { recursive: true, force: true });
      console.log(answer);`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    expect(out.trim()).toBe("copied");
  });

  it("let a process that started them exit, also when its copy ended before a worker was ready", () => {
    const entry = new URL("../dist/copy.js", import.meta.url).href;
    const source = writeTree(tempDir("src"), { only: "one file" });
    const target = tempDir("copy");
    // The pool starts at the first file, long before its worker is ready, so the copy does without it.
    const script = `
      const { copyTree } = await import(${JSON.stringify(entry)});
      const record = await copyTree(${JSON.stringify(source)}, ${JSON.stringify(target)}, { startWorkersAfter: 1 });
      console.log(record.files);`;
    // A worker that kept the process alive would make this time out (and throw) instead of returning.
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(out.trim()).toBe("1");
  });

  it("start only once a copy reaches startWorkersAfter files, in a process that has none", () => {
    const copyEntry = new URL("../dist/copy.js", import.meta.url).href;
    const slotEntry = new URL("../dist/worker-pool-slot.js", import.meta.url).href;
    const small = writeTree(
      tempDir("small"),
      Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${i}`, `${i}`])),
    );
    const large = writeTree(
      tempDir("large"),
      Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`d${i % 30}/f${i}`, `${i}`])),
    );
    const tiny = writeTree(tempDir("tiny"), { only: "one file" });
    // The tiny copy reaches its threshold at its only file and ends before the pool's code has loaded:
    // the pool is not started for nothing afterwards.
    const script = `
      const { copyTree } = await import(${JSON.stringify(copyEntry)});
      const { runningPool } = await import(${JSON.stringify(slotEntry)});
      await copyTree(${JSON.stringify(tiny)}, ${JSON.stringify(tempDir("to-tiny"))}, { startWorkersAfter: 1 });
      await new Promise((resolve) => setTimeout(resolve, 300));
      const afterTiny = runningPool.current !== undefined;
      await copyTree(${JSON.stringify(small)}, ${JSON.stringify(tempDir("to-small"))}, { startWorkersAfter: 50 });
      const afterSmall = runningPool.current !== undefined;
      const record = await copyTree(${JSON.stringify(large)}, ${JSON.stringify(tempDir("to-large"))}, { startWorkersAfter: 50 });
      console.log(JSON.stringify({ afterTiny, afterSmall, afterLarge: runningPool.current !== undefined, files: record.files }));`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(JSON.parse(out)).toEqual({ afterTiny: false, afterSmall: false, afterLarge: true, files: 3000 });
  });

  it("keep concurrent copies of different trees apart", async () => {
    const a = writeTree(
      tempDir("a"),
      Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`a${i}`, `a ${i}`])),
    );
    const b = writeTree(
      tempDir("b"),
      Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`b${i}`, `b ${i}`])),
    );
    const [toA, toB] = [tempDir("to-a"), tempDir("to-b")];
    await Promise.all([
      dist.copyTree(a, toA, { startWorkersAfter: 1 }),
      dist.copyTree(b, toB, { startWorkersAfter: 1 }),
    ]);
    expect(readTree(toA)).toEqual(readTree(a));
    expect(readTree(toB)).toEqual(readTree(b));
  });

  it.runIf(process.getuid?.() === 0)(
    "report a full filesystem as the main thread does, and leave no descriptor open",
    async () => {
      const target = tempDir("tiny");
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=512k", "tmpfs", target]);
      mounted.push(target);
      const files: Record<string, string> = {};
      for (let i = 0; i < 300; i++) files[`f${i}`] = "x".repeat(8000);
      const source = writeTree(tempDir("src"), files);
      const error = await dist.copyTree(source, target, { startWorkersAfter: 1 }).catch((e: unknown) => e);
      expect(error).toMatchObject({ name: "StageCacheError", code: "ENOSPC" });
      expect((error as Error).message).toMatch(
        /cannot copy .*\/f\d+ to .*: .*no space left.*cache's filesystem is full/,
      );
      expect(openBelow(source)).toEqual([]);
    },
  );

  it("stop on abort after the files in flight, and leave no descriptor open", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 2000; i++) files[`d${i % 10}/f${i}`] = `${i}`;
    const source = writeTree(tempDir("src"), files);
    const controller = new AbortController();
    const error = await dist
      .copyTree(source, tempDir("copy"), {
        startWorkersAfter: 1,
        signal: controller.signal,
        onProgress: ({ files: copied }) => {
          if (copied === 200) controller.abort(new Error("enough"));
        },
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ message: "enough" });
    expect(openBelow(source)).toEqual([]);
  });
});
