import { lstat, mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setImmediate } from "node:timers/promises";
import { isMainThread } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { CasError, StageError, stage } from "../src/index.js";
import { tempDir, tempsIn } from "./fixtures.js";

const isDirectory = (path: string) => async () =>
  (await lstat(path).catch(() => undefined))?.isDirectory() ?? false;

describe("stage: exactly one winner per slot", () => {
  it("publishes an empty build once: of five concurrent and three later empty builds one wins, seven adopt", async () => {
    const parent = await tempDir();
    const final = join(parent, "slot");
    const emptyStage = () => stage({ parent, final, build: () => {}, adopt: isDirectory(final) });
    const concurrent = await Promise.all(Array.from({ length: 5 }, emptyStage));
    const sequential = [await emptyStage(), await emptyStage(), await emptyStage()];
    const results = [...concurrent, ...sequential];
    expect(results.filter((r) => !r.adopted)).toHaveLength(1);
    expect(results.filter((r) => r.adopted)).toHaveLength(7);
    expect(await readdir(final)).toEqual([]);
    expect(await readdir(parent)).toEqual(["slot"]);
  });

  it("never replaces a published empty tree with a later non-empty build of the same slot", async () => {
    const parent = await tempDir();
    const final = join(parent, "slot");
    expect(await stage({ parent, final, build: () => {}, adopt: () => false })).toEqual({ adopted: false });
    const error = (await stage({
      parent,
      final,
      build: (staging) => writeFile(join(staging, "late"), "x"),
      adopt: () => false,
    }).catch((e: unknown) => e)) as StageError;
    expect(error).toBeInstanceOf(StageError);
    expect(error).toBeInstanceOf(CasError);
    expect(error.code).toBe("EEXIST");
    expect(await readdir(final)).toEqual([]);
    expect(await tempsIn(parent)).toEqual([]);
  });
});

describe("stage: abort while build stops on its signal", () => {
  it("waits for a build that takes a while to stop, so the rejection finds nothing left", async () => {
    const parent = await tempDir();
    const controller = new AbortController();
    const reason = new Error("stop");
    const outcome = stage({
      parent,
      final: join(parent, "slot"),
      signal: controller.signal,
      build: async (staging, { signal }) => {
        await writeFile(join(staging, "started"), "x");
        controller.abort(reason);
        // Stopping takes a few turns of the event loop, as killing child processes does.
        for (let turn = 0; turn < 20; turn++) await setImmediate();
        signal?.throwIfAborted();
      },
      adopt: () => false,
    });
    await expect(outcome).rejects.toBe(reason);
    expect(await readdir(parent)).toEqual([]);
  });
});

describe("stage: abort while build ignores its signal", () => {
  it("rejects with the reason before the build settles, and removes the temp dir once it does", async () => {
    const parent = await tempDir();
    const controller = new AbortController();
    const reason = new Error("stop");
    let release = () => {};
    let settled = false;
    const outcome = stage({
      parent,
      final: join(parent, "slot"),
      signal: controller.signal,
      build: async (staging) => {
        await writeFile(join(staging, "started"), "x");
        controller.abort(reason);
        // Ignores the signal: keeps writing until released.
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        await writeFile(join(staging, "finished"), "x");
        settled = true;
      },
      adopt: () => false,
    });
    await expect(outcome).rejects.toBe(reason);
    expect(settled).toBe(false);
    expect(await tempsIn(parent)).toHaveLength(1);
    release();
    for (let turn = 0; turn < 1000 && (await tempsIn(parent)).length > 0; turn++) await setImmediate();
    expect(settled).toBe(true);
    expect(await readdir(parent)).toEqual([]);
  });
});

// process.umask(mask) cannot be called in a worker thread: Stryker's vitest runner uses threads, the normal
// runs (forks) never skip this.
describe.skipIf(!isMainThread)(
  "stage: slot mode (skipped only in worker threads, where umask is fixed)",
  () => {
    const umask = process.umask();
    afterEach(() => {
      process.umask(umask);
    });

    for (const mask of [0o022, 0o002, 0o077]) {
      it(`gives the slot 0o777 less the umask (${mask.toString(8).padStart(3, "0")}), like mkdir, not mkdtemp's 0o700`, async () => {
        process.umask(mask);
        const parent = await tempDir();
        const final = join(parent, "slot");
        await stage({ parent, final, build: (staging) => mkdir(join(staging, "sub")), adopt: () => false });
        expect((await stat(final)).mode & 0o777).toBe(0o777 & ~mask);
        const empty = join(parent, "empty");
        await stage({ parent, final: empty, build: () => {}, adopt: () => false });
        expect((await stat(empty)).mode & 0o777).toBe(0o777 & ~mask);
      });
    }
  },
);
