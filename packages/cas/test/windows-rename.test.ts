// Fault injection: Windows' transient EPERM/EACCES/EBUSY on rename cannot be produced on demand by a real
// filesystem (and not at all off Windows), so fs.promises.rename is replaced by a wrapper that fails a set
// number of times before delegating to the real rename. Everything else runs on the real filesystem. The
// sleeps between attempts are injected and recorded: the schedule is asserted, never waited for.
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { tempDir, tempsIn } from "./fixtures.js";

const injected = vi.hoisted(() => ({ failures: [] as string[], calls: 0 }));

vi.mock("node:fs/promises", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:fs/promises")>();
  const rename: typeof real.rename = async (from, to) => {
    injected.calls++;
    const code = injected.failures.shift();
    if (code) throw Object.assign(new Error(`${code}: injected, rename '${from}' -> '${to}'`), { code });
    return real.rename(from, to);
  };
  return { ...real, rename, default: { ...real, rename } };
});

const { stage, StageError } = await import("../src/index.js");
const { renameDirectory } = await import("../src/rename.js");

const realPlatform = process.platform;
function pretendPlatform(platform: NodeJS.Platform): void {
  Object.defineProperty(process, "platform", { value: platform, configurable: true });
}

beforeEach(() => {
  injected.failures = [];
  injected.calls = 0;
});
afterEach(() => pretendPlatform(realPlatform));

/** A sleep that records its delay and returns at once. */
function recordingSleep(): { sleep: (ms: number) => Promise<void>; delays: number[] } {
  const delays: number[] = [];
  return { delays, sleep: async (ms) => void delays.push(ms) };
}

async function dirPair(): Promise<{ from: string; to: string; parent: string }> {
  const parent = await tempDir();
  const from = join(parent, "from");
  await mkdir(from);
  await writeFile(join(from, "f"), "x");
  return { parent, from, to: join(parent, "to") };
}

describe("renameDirectory on Windows", () => {
  for (const code of ["EPERM", "EACCES", "EBUSY"]) {
    it(`retries a transient ${code} after 10, 20 and 40 ms, then renames`, async () => {
      const { from, to } = await dirPair();
      const clock = recordingSleep();
      injected.failures = [code, code, code];
      await renameDirectory(from, to, { platform: "win32", sleep: clock.sleep });
      expect(clock.delays).toEqual([10, 20, 40]);
      expect(injected.calls).toBe(4);
      expect(await readdir(to)).toEqual(["f"]);
    });
  }

  it("gives up after eight attempts and sleeps of 10, 20, 40, 80, 160, 300, 400 ms, throwing the last error", async () => {
    const { from, to } = await dirPair();
    const clock = recordingSleep();
    injected.failures = Array(100).fill("EPERM");
    const error = await renameDirectory(from, to, { platform: "win32", sleep: clock.sleep }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: "EPERM" });
    expect(clock.delays).toEqual([10, 20, 40, 80, 160, 300, 400]);
    expect(injected.calls).toBe(8);
    expect(await readdir(from)).toEqual(["f"]);
  });

  it("does not retry when the target already exists, since that EPERM is a lost race", async () => {
    const { from, to } = await dirPair();
    await mkdir(to);
    const clock = recordingSleep();
    injected.failures = ["EPERM", "EPERM"];
    await expect(renameDirectory(from, to, { platform: "win32", sleep: clock.sleep })).rejects.toMatchObject({
      code: "EPERM",
    });
    expect(injected.calls).toBe(1);
    expect(clock.delays).toEqual([]);
  });

  it("stops retrying once the target appears between attempts", async () => {
    const { from, to } = await dirPair();
    injected.failures = ["EBUSY", "EBUSY", "EBUSY"];
    const delays: number[] = [];
    const sleep = async (ms: number) => {
      delays.push(ms);
      if (delays.length === 2) await mkdir(to);
    };
    await expect(renameDirectory(from, to, { platform: "win32", sleep })).rejects.toMatchObject({
      code: "EBUSY",
    });
    expect(delays).toEqual([10, 20]);
    expect(injected.calls).toBe(3);
  });

  it("does not retry other errors", async () => {
    const { from, to } = await dirPair();
    const clock = recordingSleep();
    injected.failures = ["EXDEV"];
    await expect(renameDirectory(from, to, { platform: "win32", sleep: clock.sleep })).rejects.toMatchObject({
      code: "EXDEV",
    });
    expect(injected.calls).toBe(1);
    expect(clock.delays).toEqual([]);
  });
});

describe("renameDirectory on other platforms", () => {
  for (const platform of ["linux", "darwin"] as const) {
    it(`does not retry EPERM on ${platform}`, async () => {
      const { from, to } = await dirPair();
      const clock = recordingSleep();
      injected.failures = ["EPERM"];
      await expect(renameDirectory(from, to, { platform, sleep: clock.sleep })).rejects.toMatchObject({
        code: "EPERM",
      });
      expect(injected.calls).toBe(1);
      expect(clock.delays).toEqual([]);
    });
  }

  it("follows process.platform by default", async () => {
    pretendPlatform("win32");
    const { from, to } = await dirPair();
    injected.failures = ["EBUSY"];
    await renameDirectory(from, to);
    expect(injected.calls).toBe(2);
    expect(await readdir(to)).toEqual(["f"]);
  });
});

describe("stage on Windows", () => {
  it("publishes the slot after a transient EPERM", async () => {
    pretendPlatform("win32");
    const parent = await tempDir();
    const final = join(parent, "slot");
    injected.failures = ["EPERM"];
    const result = await stage({
      parent,
      final,
      build: (staging) => writeFile(join(staging, "f"), "x"),
      adopt: () => false,
    });
    expect(result.adopted).toBe(false);
    expect(injected.calls).toBe(2);
    expect(await readdir(final)).toEqual(["f"]);
  });

  it("removes the temp dir and asks adopt once when a retried rename finally fails", async () => {
    pretendPlatform("win32");
    const parent = await tempDir();
    injected.failures = ["EPERM", "EXDEV"];
    let adoptCalls = 0;
    const error = (await stage({
      parent,
      final: join(parent, "slot"),
      build: (staging) => writeFile(join(staging, "f"), "x"),
      adopt: () => {
        adoptCalls++;
        return false;
      },
    }).catch((e: unknown) => e)) as InstanceType<typeof StageError>;
    expect(error).toBeInstanceOf(StageError);
    expect(error.code).toBe("EXDEV");
    expect(adoptCalls).toBe(1);
    expect(injected.calls).toBe(2);
    expect(await readdir(parent)).toEqual([]);
  });

  it("adopts an existing slot without attempting the rename at all", async () => {
    pretendPlatform("win32");
    const parent = await tempDir();
    const final = join(parent, "slot");
    await mkdir(final);
    await writeFile(join(final, "winner"), "w");
    const result = await stage({
      parent,
      final,
      build: (staging) => writeFile(join(staging, "f"), "x"),
      adopt: () => true,
    });
    expect(result.adopted).toBe(true);
    expect(injected.calls).toBe(0);
    expect(await tempsIn(parent)).toEqual([]);
  });
});
