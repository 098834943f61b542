// Fault injection: Windows' transient EPERM/EACCES/EBUSY on rename cannot be produced on demand by a real
// filesystem (and not at all off Windows), so fs.promises.rename is replaced by a wrapper that fails a set
// number of times before delegating to the real rename. Everything else runs on the real filesystem.
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

describe("rename retries on Windows", () => {
  for (const code of ["EPERM", "EACCES", "EBUSY"]) {
    it(`retries a transient ${code} and then publishes the slot`, async () => {
      pretendPlatform("win32");
      const parent = await tempDir();
      const final = join(parent, "slot");
      injected.failures = [code, code, code];
      const result = await stage({
        parent,
        final,
        build: (staging) => writeFile(join(staging, "f"), "x"),
        adopt: () => false,
      });
      expect(result.adopted).toBe(false);
      expect(injected.calls).toBe(4);
      expect(await readdir(final)).toEqual(["f"]);
    });
  }

  it("gives up after about a second of EPERM, removes the temp dir and asks adopt", async () => {
    pretendPlatform("win32");
    const parent = await tempDir();
    injected.failures = Array(100).fill("EPERM");
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
    expect(error.code).toBe("EPERM");
    expect(adoptCalls).toBe(1);
    expect(injected.calls).toBeGreaterThan(3);
    expect(injected.calls).toBeLessThan(20);
    expect(await readdir(parent)).toEqual([]);
  });

  it("does not retry when the slot already exists, since that EPERM is a lost race", async () => {
    pretendPlatform("win32");
    const parent = await tempDir();
    await mkdir(join(parent, "from"));
    await mkdir(join(parent, "to"));
    injected.failures = ["EPERM", "EPERM"];
    await expect(renameDirectory(join(parent, "from"), join(parent, "to"), "win32")).rejects.toMatchObject({
      code: "EPERM",
    });
    expect(injected.calls).toBe(1);
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

  it("does not retry other errors", async () => {
    const parent = await tempDir();
    await mkdir(join(parent, "from"));
    injected.failures = ["EXDEV"];
    await expect(renameDirectory(join(parent, "from"), join(parent, "to"), "win32")).rejects.toMatchObject({
      code: "EXDEV",
    });
    expect(injected.calls).toBe(1);
  });
});

describe("rename on other platforms", () => {
  it("does not retry EPERM off Windows", async () => {
    const parent = await tempDir();
    await mkdir(join(parent, "from"));
    injected.failures = ["EPERM"];
    await expect(renameDirectory(join(parent, "from"), join(parent, "to"), "linux")).rejects.toMatchObject({
      code: "EPERM",
    });
    expect(injected.calls).toBe(1);
  });
});
