// The walk's own guarantees, seen through its test hook (which entries it opens, and when) and through
// /proc/self/fd (which descriptors it leaves open).
import { execFileSync } from "node:child_process";
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  renameSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { copyTree } from "../src/copy.js";
import { procLookupWorks } from "../src/tree-reader.js";
import { type OpenStep, type WalkOptions, walkTree } from "../src/walk.js";
import { readTree, tempDir, writeTree } from "./fixtures.js";

/** Descriptors of this process that lead into `dir`. */
function openBelow(dir: string): string[] {
  const open: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) open.push(target);
    } catch {
      // Closed while listing (the listing's own descriptor).
    }
  }
  return open;
}

/** Records every open the walk announces, as [path relative to root, step]. */
function recordOpens(
  root: string,
  options: WalkOptions = {},
): { opens: [string, OpenStep][]; options: WalkOptions } {
  const opens: [string, OpenStep][] = [];
  return {
    opens,
    options: {
      ...options,
      onStep: (path, step) => {
        opens.push([path.slice(root.length + 1), step]);
        options.onStep?.(path, step);
      },
    },
  };
}

const lookups = procLookupWorks() ? (["proc", "path"] as const) : (["path"] as const);

describe.each(lookups)("walkTree (%s lookups)", (lookup) => {
  it("never opens skipped directories, sockets, FIFOs, or symlinks to anything but a regular file", async () => {
    const source = writeTree(tempDir("src"), { "f.txt": "f", ".git/HEAD": "x", "node_modules/m/i.js": "x" });
    execFileSync("mkfifo", [join(source, "fifo")]);
    symlinkSync("fifo", join(source, "link-to-fifo"));
    symlinkSync("/dev/null", join(source, "link-to-device"));
    symlinkSync(".git", join(source, "link-to-dir"));
    symlinkSync("f.txt", join(source, "link-to-file"));
    const { opens, options } = recordOpens(source, { lookup });
    const target = tempDir("copy");
    await copyTree(source, target, options);
    expect(opens.sort()).toEqual([
      ["f.txt", "entry"],
      ["f.txt", "entry-opened"],
      ["link-to-file", "link-target"],
      ["link-to-file", "link-target-opened"],
    ]);
    expect(Object.keys(readTree(target)).sort()).toEqual(["f.txt", "link-to-file"]);
  });

  it("goes by what an entry is when opened: a file that became a directory is descended", async () => {
    const source = writeTree(tempDir("src"), { "x/placeholder": "p", became: "a file when listed" });
    const target = tempDir("copy");
    let swapped = false;
    await copyTree(source, target, {
      lookup,
      onStep: (path, step) => {
        if (swapped || step !== "entry" || path !== join(source, "became")) return;
        swapped = true;
        unlinkSync(path);
        mkdirSync(path);
        writeFileSync(join(path, "inside"), "inside");
      },
    });
    expect(readTree(target)).toMatchObject({ "became/": "dir", "became/inside": expect.any(String) });
  });

  it("skips a dot-directory or node_modules that replaced a listed file", async () => {
    const source = writeTree(tempDir("src"), {
      ".cache": "a dotfile when listed",
      node_modules: "a file too",
    });
    const target = tempDir("copy");
    await copyTree(source, target, {
      lookup,
      onStep: (path, step) => {
        if (step !== "entry") return;
        unlinkSync(path);
        mkdirSync(path);
        writeFileSync(join(path, "inside"), "never copied");
      },
    });
    expect(readTree(target)).toEqual({});
  });

  it("skips a FIFO that replaced a listed file, without blocking on it", async () => {
    const source = writeTree(tempDir("src"), { f: "a file when listed", g: "g" });
    const target = tempDir("copy");
    await copyTree(source, target, {
      lookup,
      onStep: (path, step) => {
        if (step !== "entry" || path !== join(source, "f")) return;
        unlinkSync(path);
        execFileSync("mkfifo", [path]);
      },
    });
    expect(Object.keys(readTree(target))).toEqual(["g"]);
  });

  it("fails with ENOENT, naming the entry, when a listed entry is gone when opened", async () => {
    const source = writeTree(tempDir("src"), { f: "f" });
    const error = await copyTree(source, tempDir("copy"), {
      lookup,
      onStep: (path, step) => step === "entry" && unlinkSync(path),
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "StageCacheError", code: "ENOENT", path: join(source, "f") });
    expect((error as Error).message).toMatch(/cannot copy .*\/f: .*disappeared while being copied/);
  });

  it("skips a symlink that became dangling between its resolution and its opening", async () => {
    // The target lies in a dot-directory, which is never walked itself, so only the link leads to it.
    const source = writeTree(tempDir("src"), { ".hidden/target.txt": "t", "other.txt": "o" });
    symlinkSync(".hidden/target.txt", join(source, "link"));
    const target = tempDir("copy");
    await copyTree(source, target, {
      lookup,
      onStep: (_path, step) => {
        if (step === "link-target")
          renameSync(join(source, ".hidden/target.txt"), join(source, ".hidden/moved"));
      },
    });
    expect(Object.keys(readTree(target))).toEqual(["other.txt"]);
  });

  it("skips a followed symlink whose target became a directory between its resolution and its opening", async () => {
    const source = writeTree(tempDir("src"), { ".hidden/target": "t", "other.txt": "o" });
    symlinkSync(".hidden/target", join(source, "link"));
    const target = tempDir("copy");
    await copyTree(source, target, {
      lookup,
      onStep: (_path, step) => {
        if (step !== "link-target") return;
        unlinkSync(join(source, ".hidden/target"));
        mkdirSync(join(source, ".hidden/target"));
      },
    });
    expect(Object.keys(readTree(target))).toEqual(["other.txt"]);
  });

  it("gives the event loop turns during a long walk even when every file is done at once", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 3000; i++) files[`d${i % 10}/f${i}`] = `${i}`;
    const source = writeTree(tempDir("src"), files);
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    // Each file takes 30 µs of this thread, so the walk takes at least 90 ms: a dozen slices of 8 ms, each
    // followed by a turn of the event loop (without slices, the only turns are the two around its start).
    const busy = () => {
      const until = performance.now() + 0.03;
      while (performance.now() < until);
    };
    await walkTree(
      source,
      {
        action: "read",
        file: (_file, done) => {
          busy();
          done();
        },
      },
      { lookup },
    );
    clearInterval(ticker);
    expect(turns).toBeGreaterThanOrEqual(6);
  });

  it("keeps at most `concurrency` files unfinished", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 400; i++) files[`d${i % 4}/f${i}`] = `${i}`;
    const source = writeTree(tempDir("src"), files);
    let unfinished = 0;
    let most = 0;
    await walkTree(
      source,
      {
        action: "read",
        file: (_file, done) => {
          unfinished++;
          most = Math.max(most, unfinished);
          setTimeout(() => {
            unfinished--;
            done();
          }, 1);
        },
      },
      { lookup, concurrency: 8 },
    );
    expect(most).toBe(8);
  });

  it("takes a visitor's throw as its failure, and a second `done` from a visitor as nothing", async () => {
    const source = writeTree(tempDir("src"), { a: "a", b: "b", c: "c" });
    const keep = openSync(join(source, "a"), "r");
    let calls = 0;
    await walkTree(
      source,
      {
        action: "read",
        file: (_file, done) => {
          calls++;
          done();
          done(new Error("late"));
        },
      },
      { lookup },
    );
    expect(calls).toBe(3);
    // Closing a descriptor twice could close one opened since by someone else, such as this one.
    expect(fstatSync(keep).isFile()).toBe(true);
    closeSync(keep);
    await expect(
      walkTree(
        source,
        {
          action: "read",
          file: () => {
            throw new Error("visitor threw");
          },
        },
        { lookup },
      ),
    ).rejects.toThrow("visitor threw");
    expect(openBelow(source)).toEqual([]);
  });

  it("leaves no descriptor open, after a whole walk and after a failed one", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++) files[`d${i % 7}/e${i % 3}/f${i}`] = `${i}`;
    const source = writeTree(tempDir("src"), files);
    symlinkSync("d0/e0/f0", join(source, "link"));
    // A large file with holes is read through a second, direct descriptor: that one must go too.
    execFileSync("truncate", ["-s", "8M", join(source, "holes")]);
    await copyTree(source, tempDir("copy"), { lookup });
    expect(openBelow(source)).toEqual([]);

    let seen = 0;
    const failing = walkTree(
      source,
      {
        action: "read",
        file: (_file, done) => {
          seen++;
          if (seen === 100) done(new Error("visitor failed"));
          else setImmediate(done);
        },
      },
      { lookup },
    );
    await expect(failing).rejects.toThrow("visitor failed");
    expect(openBelow(source)).toEqual([]);

    const aborted = new AbortController();
    const stopped = walkTree(
      source,
      {
        action: "read",
        file: (_file, done) => {
          aborted.abort(new Error("stop"));
          setImmediate(done);
        },
      },
      { lookup, signal: aborted.signal },
    );
    await expect(stopped).rejects.toThrow("stop");
    expect(openBelow(source)).toEqual([]);
  });

  it("waits for every file started before it rejects", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 50; i++) files[`f${i}`] = `${i}`;
    const source = writeTree(tempDir("src"), files);
    let unfinished = 0;
    let atRejection = -1;
    const walk = walkTree(
      source,
      {
        action: "read",
        file: (_file, done) => {
          unfinished++;
          setTimeout(() => {
            unfinished--;
            done(unfinished === 40 ? new Error("one failed") : undefined);
          }, 5);
        },
      },
      { lookup },
    );
    await walk.catch(() => {
      atRejection = unfinished;
    });
    expect(atRejection).toBe(0);
  });
});
