// Fault injection: whether data reached the disk cannot be observed without cutting the power, so the test
// records which paths were fsynced, through a wrapper around fs.promises.open, on a real tree.
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { tempDir } from "./fixtures.js";

const synced = vi.hoisted(() => ({ paths: [] as string[], events: [] as string[], opened: 0, closed: 0 }));

vi.mock("node:fs/promises", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:fs/promises")>();
  const open: typeof real.open = async (path, ...rest) => {
    const handle = await real.open(path, ...rest);
    synced.opened++;
    const sync = handle.sync.bind(handle);
    handle.sync = async () => {
      synced.paths.push(String(path));
      synced.events.push(`sync ${String(path)}`);
      return sync();
    };
    const close = handle.close.bind(handle);
    handle.close = async () => {
      synced.closed++;
      return close();
    };
    return handle;
  };
  const rename: typeof real.rename = async (from, to) => {
    synced.events.push(`rename ${String(to)}`);
    return real.rename(from, to);
  };
  return { ...real, open, rename, default: { ...real, open, rename } };
});

const { EntryStore, stage } = await import("../src/index.js");
const { syncTree } = await import("../src/durable.js");

beforeEach(() => {
  synced.paths = [];
  synced.events = [];
  synced.opened = 0;
  synced.closed = 0;
});

const realPlatform = process.platform;
afterEach(() => {
  Object.defineProperty(process, "platform", { value: realPlatform, configurable: true });
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

describe("syncTree", () => {
  it("fsyncs every file of a tree wider than one batch exactly once, and closes every handle", async () => {
    const root = await tempDir();
    const files = Array.from({ length: 40 }, (_, i) => join(root, `f${i}`));
    for (const file of files) await writeFile(file, "x");
    await syncTree(root);
    expect([...synced.paths].sort()).toEqual([...files, root].sort());
    expect(synced.closed).toBe(synced.opened);
  });

  it("does not open directories on Windows, which cannot fsync them", async () => {
    const root = await tempDir();
    await mkdir(join(root, "sub"));
    await writeFile(join(root, "sub", "f"), "x");
    Object.defineProperty(process, "platform", { value: "win32", configurable: true });
    await syncTree(root);
    expect(synced.paths).toEqual([join(root, "sub", "f")]);
  });
});

describe("EntryStore.publish with durable: true", () => {
  it("fsyncs the entry, its sentinel included, before the rename that publishes it", async () => {
    const root = await tempDir();
    const store = new EntryStore({
      stagingDir: join(root, ".staging"),
      trashDir: join(root, ".trash"),
      sentinel: ".complete",
      claim: ".claimed",
    });
    await store.prepare();
    const slot = join(root, "ab", "abc");
    let staging = "";
    await store.publish(slot, {
      durable: true,
      build: async (dir) => {
        staging = dir;
        await writeFile(join(dir, "f"), "x");
        return "done";
      },
    });
    const renameAt = synced.events.indexOf(`rename ${slot}`);
    expect(synced.events.indexOf(`sync ${join(staging, ".complete")}`)).toBeGreaterThanOrEqual(0);
    expect(synced.events.indexOf(`sync ${join(staging, ".complete")}`)).toBeLessThan(renameAt);
    expect(synced.events.indexOf(`sync ${join(staging, "f")}`)).toBeLessThan(renameAt);
    expect(synced.events.at(-1)).toBe(`sync ${join(root, "ab")}`);
  });

  it("fsyncs nothing by default", async () => {
    const root = await tempDir();
    const store = new EntryStore({
      stagingDir: join(root, ".staging"),
      trashDir: join(root, ".trash"),
      sentinel: ".complete",
      claim: ".claimed",
    });
    await store.prepare();
    await store.publish(join(root, "ab", "abc"), { build: () => "done" });
    expect(synced.paths).toEqual([]);
  });
});
