// Fault injection: whether data reached the disk cannot be observed without cutting the power, so the test
// records which paths were fsynced, through a wrapper around fs.promises.open, on a real tree.
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { tempDir } from "./fixtures.js";

const synced = vi.hoisted(() => ({ paths: [] as string[], events: [] as string[] }));

vi.mock("node:fs/promises", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:fs/promises")>();
  const open: typeof real.open = async (path, ...rest) => {
    const handle = await real.open(path, ...rest);
    const sync = handle.sync.bind(handle);
    handle.sync = async () => {
      synced.paths.push(String(path));
      synced.events.push(`sync ${String(path)}`);
      return sync();
    };
    return handle;
  };
  const rename: typeof real.rename = async (from, to) => {
    synced.events.push(`rename ${String(to)}`);
    return real.rename(from, to);
  };
  return { ...real, open, rename, default: { ...real, open, rename } };
});

const { stage } = await import("../src/index.js");

beforeEach(() => {
  synced.paths = [];
  synced.events = [];
});

describe("stage with durable: true", () => {
  it("fsyncs every file and directory of the tree before the rename, and the slot's directory after", async () => {
    const parent = await tempDir();
    const final = join(parent, "slot");
    let staging = "";
    await stage({
      parent,
      final,
      durable: true,
      build: async (dir) => {
        staging = dir;
        await mkdir(join(dir, "a", "b"), { recursive: true });
        await writeFile(join(dir, "top"), "1");
        await writeFile(join(dir, "a", "b", "deep"), "2");
        await symlink("top", join(dir, "link"));
      },
      adopt: () => false,
    });
    const before = ["", "top", "a", "a/b", "a/b/deep"].map((p) => (p ? join(staging, p) : staging));
    expect([...synced.paths].sort()).toEqual([...before, parent].sort());
    const renameAt = synced.events.indexOf(`rename ${final}`);
    expect(renameAt).toBe(synced.events.length - 2);
    expect(synced.events.at(-1)).toBe(`sync ${parent}`);
  });

  it("fsyncs nothing by default", async () => {
    const parent = await tempDir();
    await stage({
      parent,
      final: join(parent, "slot"),
      build: (dir) => writeFile(join(dir, "f"), "x"),
      adopt: () => false,
    });
    expect(synced.paths).toEqual([]);
  });
});
