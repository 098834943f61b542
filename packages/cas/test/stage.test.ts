import { getEventListeners } from "node:events";
import { mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { setImmediate } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { StageError, stage } from "../src/index.js";
import { readTree, tempDir, tempsIn } from "./fixtures.js";

async function writeSample(staging: string): Promise<void> {
  await mkdir(join(staging, "sub"));
  await writeFile(join(staging, "a.txt"), "alpha");
  await writeFile(join(staging, "sub", "b.txt"), "beta");
}

const never = () => false;

describe("stage: temp dir", () => {
  it("creates the temp dir inside parent, named after the slot with a random suffix", async () => {
    const parent = await tempDir();
    const final = join(parent, "slot");
    const seen: string[] = [];
    await stage({
      parent,
      final,
      build: async (staging) => {
        seen.push(staging);
        expect(await readdir(staging)).toEqual([]);
      },
      adopt: never,
    });
    const staging = seen[0] ?? "";
    expect(dirname(staging)).toBe(parent);
    expect(basename(staging)).toMatch(/^slot\.tmp\.[A-Za-z0-9]{6}$/);
  });

  it("gives concurrent calls distinct temp dirs", async () => {
    const parent = await tempDir();
    const seen = new Set<string>();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        stage({
          parent,
          final: join(parent, `slot${i % 2}`),
          build: (staging) => {
            seen.add(staging);
          },
          adopt: () => true,
        }),
      ),
    );
    expect(seen.size).toBe(20);
  });

  it("never creates a missing parent and reports it as a tmp-phase StageError with ENOENT", async () => {
    const root = await tempDir();
    const parent = join(root, "missing");
    let built = false;
    const error = await stage({
      parent,
      final: join(parent, "slot"),
      build: () => {
        built = true;
      },
      adopt: never,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StageError);
    const stageError = error as StageError;
    expect(stageError.phase).toBe("tmp");
    expect(stageError.code).toBe("ENOENT");
    expect(stageError.cause).toBeInstanceOf(Error);
    expect(stageError.message).toBe(`stage tmp: ${(stageError.cause as Error).message}`);
    expect(stageError.name).toBe("StageError");
    expect(built).toBe(false);
    expect(await readdir(root)).toEqual([]);
  });

  it("prefixes the tmp-phase message with tmpPrefix", async () => {
    const root = await tempDir();
    const parent = join(root, "missing");
    await expect(
      stage({
        parent,
        final: join(parent, "s"),
        tmpPrefix: "baseline staging",
        build: () => {},
        adopt: never,
      }),
    ).rejects.toThrow(
      /^baseline staging: ENOENT: no such file or directory, mkdir '.*missing\/s\.tmp\.[A-Za-z0-9]{6}'$/,
    );
  });
});

describe("stage: build", () => {
  it("rethrows the very error value build threw and removes the temp dir", async () => {
    const parent = await tempDir();
    const thrown = new Error("build broke");
    const error = await stage({
      parent,
      final: join(parent, "slot"),
      build: async (staging) => {
        await writeSample(staging);
        throw thrown;
      },
      adopt: never,
    }).catch((e: unknown) => e);
    expect(error).toBe(thrown);
    expect(await readdir(parent)).toEqual([]);
  });

  it("rethrows non-Error values from a synchronous build unchanged", async () => {
    const parent = await tempDir();
    const thrown = { reason: "not an Error" };
    const error = await stage({
      parent,
      final: join(parent, "slot"),
      build: () => {
        throw thrown;
      },
      adopt: never,
    }).catch((e: unknown) => e);
    expect(error).toBe(thrown);
    expect(await readdir(parent)).toEqual([]);
  });
});

describe("stage: rename", () => {
  it("resolves adopted: false with final holding exactly what build wrote and no temp dir left", async () => {
    const parent = await tempDir();
    const final = join(parent, "slot");
    let adoptCalls = 0;
    const result = await stage({
      parent,
      final,
      build: writeSample,
      adopt: () => {
        adoptCalls++;
        return false;
      },
    });
    expect(result).toEqual({ adopted: false });
    expect(await readTree(final)).toEqual({ "a.txt": "alpha", "sub/b.txt": "beta" });
    expect(await readdir(parent)).toEqual(["slot"]);
    expect(adoptCalls).toBe(0);
  });

  it("never replaces an empty directory at final: it adopts it or reports EEXIST", async () => {
    const parent = await tempDir();
    const final = join(parent, "slot");
    await mkdir(final);
    const refused = (await stage({ parent, final, build: writeSample, adopt: never }).catch(
      (e: unknown) => e,
    )) as StageError;
    expect(refused).toBeInstanceOf(StageError);
    expect(refused.phase).toBe("finalize");
    expect(refused.code).toBe("EEXIST");
    expect(refused.path).toBe(final);
    expect(await readdir(final)).toEqual([]);
    expect(await stage({ parent, final, build: writeSample, adopt: () => true })).toEqual({ adopted: true });
    expect(await readdir(final)).toEqual([]);
    expect(await tempsIn(parent)).toEqual([]);
  });

  it("adopts a finished peer when the rename fails and adopt returns true", async () => {
    const parent = await tempDir();
    const final = join(parent, "slot");
    await mkdir(final);
    await writeFile(join(final, "winner.txt"), "peer");
    const result = await stage({ parent, final, build: writeSample, adopt: () => true });
    expect(result).toEqual({ adopted: true });
    expect(await readTree(final)).toEqual({ "winner.txt": "peer" });
    expect(await tempsIn(parent)).toEqual([]);
  });

  it("awaits an async adopt", async () => {
    const parent = await tempDir();
    const final = join(parent, "slot");
    await mkdir(final);
    await writeFile(join(final, "winner.txt"), "peer");
    const result = await stage({
      parent,
      final,
      build: writeSample,
      adopt: async () => (await stat(join(final, "winner.txt"))).isFile(),
    });
    expect(result.adopted).toBe(true);
  });

  it("rejects with a finalize-phase StageError carrying the rename error when adopt returns false", async () => {
    const parent = await tempDir();
    const final = join(parent, "slot");
    await mkdir(final);
    await writeFile(join(final, "junk.txt"), "not a finished slot");
    const error = (await stage({
      parent,
      final,
      finalizePrefix: "stage finalize",
      build: writeSample,
      adopt: never,
    }).catch((e: unknown) => e)) as StageError;
    expect(error).toBeInstanceOf(StageError);
    expect(error.phase).toBe("finalize");
    expect(["ENOTEMPTY", "EEXIST"]).toContain(error.code);
    expect((error.cause as NodeJS.ErrnoException).code).toBe(error.code);
    expect(error.message).toBe(`stage finalize: ${(error.cause as Error).message}`);
    expect(await readTree(final)).toEqual({ "junk.txt": "not a finished slot" });
    expect(await tempsIn(parent)).toEqual([]);
  });

  it("removes the temp dir before adopt runs and lets an adopt error propagate unwrapped", async () => {
    const parent = await tempDir();
    const final = join(parent, "slot");
    await mkdir(final);
    await writeFile(join(final, "x"), "x");
    const thrown = new Error("adopt broke");
    let tempsDuringAdopt: string[] = ["not called"];
    const error = await stage({
      parent,
      final,
      build: writeSample,
      adopt: async () => {
        tempsDuringAdopt = await tempsIn(parent);
        throw thrown;
      },
    }).catch((e: unknown) => e);
    expect(error).toBe(thrown);
    expect(tempsDuringAdopt).toEqual([]);
    expect(await tempsIn(parent)).toEqual([]);
  });

  it("reports a slot found taken before the rename as a rename's EEXIST naming both paths", async () => {
    const parent = await tempDir();
    const final = join(parent, "slot");
    await mkdir(final);
    await writeFile(join(final, "other"), "x");
    const error = (await stage({ parent, final, build: writeSample, adopt: never }).catch(
      (e: unknown) => e,
    )) as StageError;
    expect(error.code).toBe("EEXIST");
    expect(error.message).toMatch(
      new RegExp(
        `^stage finalize: EEXIST: file already exists, rename '.*slot\\.tmp\\.[A-Za-z0-9]{6}' -> '${final}'$`,
      ),
    );
    expect(error.cause).toMatchObject({ code: "EEXIST", syscall: "rename", dest: final });
  });

  it("reports ENOTDIR when final is a file and adopt declines", async () => {
    const parent = await tempDir();
    const final = join(parent, "slot");
    await writeFile(final, "a file in the way");
    const error = (await stage({ parent, final, build: writeSample, adopt: never }).catch(
      (e: unknown) => e,
    )) as StageError;
    expect(error.phase).toBe("finalize");
    expect(["ENOTDIR", "EISDIR", "EEXIST"]).toContain(error.code);
    expect(await tempsIn(parent)).toEqual([]);
  });
});

describe("stage: abort signal", () => {
  it("passes the signal to build", async () => {
    const parent = await tempDir();
    const controller = new AbortController();
    let received: AbortSignal | undefined;
    await stage({
      parent,
      final: join(parent, "slot"),
      signal: controller.signal,
      build: (_staging, ctx) => {
        received = ctx.signal;
      },
      adopt: never,
    });
    expect(received).toBe(controller.signal);
  });

  it("throws the abort reason and removes the temp dir when aborted during build", async () => {
    const parent = await tempDir();
    const final = join(parent, "slot");
    const controller = new AbortController();
    const reason = new Error("user cancelled");
    const error = await stage({
      parent,
      final,
      signal: controller.signal,
      build: async (staging) => {
        await writeSample(staging);
        controller.abort(reason); // build ignores the signal; stage must still not publish
      },
      adopt: never,
    }).catch((e: unknown) => e);
    expect(error).toBe(reason);
    expect(await readdir(parent)).toEqual([]);
  });

  it("throws the abort reason without creating anything when already aborted", async () => {
    const parent = await tempDir();
    const controller = new AbortController();
    controller.abort();
    let built = false;
    const error = await stage({
      parent,
      final: join(parent, "slot"),
      signal: controller.signal,
      build: () => {
        built = true;
      },
      adopt: never,
    }).catch((e: unknown) => e);
    expect((error as Error).name).toBe("AbortError");
    expect(built).toBe(false);
    expect(await readdir(parent)).toEqual([]);
  });
});

describe("stage: the caller's signal", () => {
  it("is left without an abort listener once stage settles, whatever the outcome", async () => {
    const parent = await tempDir();
    const controller = new AbortController();
    await stage({
      parent,
      final: join(parent, "a"),
      signal: controller.signal,
      build: writeSample,
      adopt: never,
    });
    await stage({
      parent,
      final: join(parent, "b"),
      signal: controller.signal,
      build: () => {
        throw new Error("build failed");
      },
      adopt: never,
    }).catch(() => {});
    for (let turn = 0; turn < 10; turn++) await setImmediate();
    expect(getEventListeners(controller.signal, "abort")).toEqual([]);
  });
});

describe("stage: durable", () => {
  it("publishes the same tree with durable: true", async () => {
    const parent = await tempDir();
    const final = join(parent, "slot");
    const result = await stage({ parent, final, durable: true, build: writeSample, adopt: never });
    expect(result.adopted).toBe(false);
    expect(await readTree(final)).toEqual({ "a.txt": "alpha", "sub/b.txt": "beta" });
    expect(await readdir(parent)).toEqual(["slot"]);
  });
});
