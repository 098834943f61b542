// Scratch copies of a process that still runs must survive every other process's open(), however old they
// look; those of a process that died go. Owners are real long-lived processes (scratch-owner.mjs), killed
// with SIGKILL where a test needs a dead one.
import { execFileSync, spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { basename, join } from "node:path";
import { kernelTest } from "@cas-stage/test-support/kernel";
import { describe, expect, it } from "vitest";
import { StageCache, StageCacheError } from "../src/index.js";
import { isAbandonedScratch, removeScratch, scratchOwnerState, statFields } from "../src/scratch.js";
import { readTree, sampleTree, tempDir, until, writeTree } from "./fixtures.js";
import { LineProcess, SCRATCH_OWNER, stageOnce } from "./processes.js";

const HOUR_MS = 3_600_000;
const SOURCE_FILES = [".env", "README.md", "bin", "src"];

/** Moves the scratch copy's mark of last use an hour back: older than any staleAfterMs the tests use. */
function age(path: string): void {
  const old = new Date(Date.now() - HOUR_MS);
  utimesSync(path, old, old);
}

/** Another process's open(), as a cleaner: scratch unused for a minute is stale for it. */
async function openElsewhere(root: string): Promise<void> {
  const cache = await StageCache.open({ root, staleAfterMs: 60_000 });
  await cache.close();
}

function startOwner(root: string, source: string, wrap: string[] = []): LineProcess {
  const argv = [...wrap, process.execPath, SCRATCH_OWNER, root, source];
  return new LineProcess(argv[0] as string, argv.slice(1));
}

describe("a scratch copy", () => {
  it("of a process that still runs survives another process's open(), however old it looks", async () => {
    const root = join(tempDir("root"), "cache");
    const source = sampleTree(tempDir("src"));
    const owner = startOwner(root, source);
    try {
      const { path } = (await owner.waitFor((line) => line.kind === "ready")) as { path: string };
      age(path);
      await openElsewhere(root);
      expect(existsSync(path)).toBe(true);
      // Even a cleaner for which all debris is stale leaves it.
      await stageOnce({ root, sweep: true, options: { staleAfterMs: 0 } });
      expect(existsSync(path)).toBe(true);
      owner.send("stage");
      expect(await owner.waitFor((line) => line.kind === "staged")).toEqual({
        kind: "staged",
        path,
        files: SOURCE_FILES,
      });
      owner.send("close");
      await owner.waitFor((line) => line.kind === "closed");
      expect(existsSync(path)).toBe(false);
    } finally {
      owner.child.kill("SIGKILL");
    }
  });

  it("of a process killed with SIGKILL is removed by the next open() once stale, and kept while young", async () => {
    const root = join(tempDir("root"), "cache");
    const owner = startOwner(root, sampleTree(tempDir("src")));
    const { path } = (await owner.waitFor((line) => line.kind === "ready")) as { path: string };
    owner.child.kill("SIGKILL");
    expect((await owner.exited).signal).toBe("SIGKILL");
    // A dead owner's copy is debris like any other: it goes once unused for staleAfterMs, not before (a
    // process the owner started may still be reading it).
    await openElsewhere(root);
    expect(existsSync(path)).toBe(true);
    age(path);
    await openElsewhere(root);
    expect(existsSync(path)).toBe(false);
    expect(existsSync(`${path}.deleting`)).toBe(false);
  });

  it("is checked before it is handed out again, and made anew when it is gone", async () => {
    const source = sampleTree(tempDir("src"));
    const cache = await StageCache.open({ root: join(tempDir("root"), "cache") });
    const first = await cache.stage(source);
    rmSync(first, { recursive: true });
    const second = await cache.stage(source);
    expect(second).not.toBe(first);
    expect(readTree(second)).toEqual(readTree(source));
    expect(await cache.stage(source)).toBe(second);
    await cache.close();
    expect(existsSync(second)).toBe(false);
  });

  it("of a process in another pid namespace is judged by its last use, which each hand-out renews", async () => {
    // The cleaner cannot see the owner's process here, so it falls back to age (see scratch.ts).
    const root = join(tempDir("root"), "cache");
    const source = sampleTree(tempDir("src"));
    const owner = startOwner(root, source, ["unshare", "--pid", "--fork", "--mount-proc"]);
    try {
      const { path, pid } = (await owner.waitFor((line) => line.kind === "ready")) as {
        path: string;
        pid: number;
      };
      expect(pid).toBe(1);
      expect(scratchOwnerState(basename(path))).toBe("unknown");
      age(path);
      owner.send("stage");
      await owner.waitFor((line) => line.kind === "staged");
      await openElsewhere(root);
      expect(existsSync(path), "used a moment ago").toBe(true);
      age(path);
      await openElsewhere(root);
      expect(existsSync(path), "unused for an hour").toBe(false);
      owner.send("stage");
      const again = (await owner.waitFor((line) => line.kind === "staged" && line.path !== path)) as {
        path: string;
        files: string[];
      };
      expect(again.files).toEqual(SOURCE_FILES);
    } finally {
      owner.child.kill("SIGKILL");
    }
  });
});

describe("a scratch copy of a process that cannot tell its own kernel", () => {
  kernelTest(
    "mountTmpfs",
    "is named with neither start time nor kernel key, so that cleaners judge it by its last use",
    async () => {
      const root = join(tempDir("root"), "cache");
      // The boot id hidden under an empty tmpfs, in a mount namespace of the owner's own.
      const hide = 'mount -t tmpfs none /proc/sys/kernel/random && exec "$0" "$@"';
      const owner = startOwner(root, sampleTree(tempDir("src")), ["unshare", "--mount", "sh", "-c", hide]);
      try {
        const { path } = (await owner.waitFor((line) => line.kind === "ready")) as { path: string };
        expect(basename(path)).toMatch(/^\d+-x-x-[A-Za-z0-9]{6}$/);
        expect(scratchOwnerState(basename(path))).toBe("unknown");
        owner.send("close");
        expect((await owner.exited).code).toBe(0);
      } finally {
        owner.child.kill("SIGKILL");
      }
    },
  );
});

describe("a cleaner that cannot tell its own kernel", () => {
  kernelTest(
    "mountTmpfs",
    "judges by age a copy whose name has no kernel key either, even when its pid and start time are alive",
    async () => {
      const root = join(tempDir("root"), "cache");
      const own = readFileSync(`/proc/${process.pid}/stat`, "utf8");
      const start = own.slice(own.lastIndexOf(")") + 2).split(" ")[19] as string;
      // No key on either side says nothing about being on one kernel: the pid may be another machine's.
      const scratch = writeTree(join(root, ".scratch", `${process.pid}-${start}-x-AbC123`), { a: "a" });
      age(scratch);
      const hide = 'mount -t tmpfs none /proc/sys/kernel/random && exec "$0" "$@"';
      const result = await stageOnce(
        { root, sweep: true, options: { staleAfterMs: 60_000 } },
        { wrap: ["unshare", "--mount", "sh", "-c", hide] },
      );
      expect(result.error).toBeUndefined();
      expect(existsSync(scratch)).toBe(false);
    },
  );
});

describe("removing a stale scratch copy", () => {
  kernelTest(
    "chattr",
    "renames it first, so a removal that fails midway never leaves it half-deleted under its name",
    async () => {
      const root = join(tempDir("root"), "cache");
      // A copy of an older version's kind (no owner in its name): judged by age alone.
      const scratch = writeTree(join(root, ".scratch", "s-AbC123"), { a: "a", b: "b" });
      execFileSync("chattr", ["+i", join(scratch, "b")]);
      try {
        age(scratch);
        const warnings: string[] = [];
        const cache = await StageCache.open({
          root,
          staleAfterMs: 60_000,
          onWarning: (m) => warnings.push(m),
        });
        await cache.close();
        expect(warnings).toEqual([expect.stringMatching(/^could not remove stale scratch copy: /)]);
        expect(existsSync(scratch)).toBe(false);
        // What went before the immutable file depends on the listing order; the immutable file stays.
        expect(readdirSync(`${scratch}.deleting`)).toContain("b");
      } finally {
        execFileSync("chattr", ["-i", join(`${scratch}.deleting`, "b")]);
      }
      // The next cleaner finishes the job, whatever its age.
      const cache = await StageCache.open({ root });
      await cache.close();
      expect(readdirSync(join(root, ".scratch"))).toEqual([]);
    },
  );
});

describe("the owner of a scratch directory, as a cleaner sees it", () => {
  const own = readFileSync(`/proc/${process.pid}/stat`, "utf8");
  const start = own.slice(own.lastIndexOf(")") + 2).split(" ")[19] as string;
  /** This process's own scratch name, from a real copy (so its kernel key is the one this test runs under). */
  async function ownName(): Promise<{ pid: string; kernel: string }> {
    const cache = await StageCache.open({ root: join(tempDir("root"), "cache") });
    const [pid, , kernel] = basename(await cache.stage(sampleTree(tempDir("src")))).split("-");
    await cache.close();
    return { pid: pid as string, kernel: kernel as string };
  }

  it("is alive for this very process", async () => {
    const { pid, kernel } = await ownName();
    expect(pid).toBe(String(process.pid));
    expect(scratchOwnerState(`${pid}-${start}-${kernel}-AbC123`)).toBe("alive");
  });

  it("is named with this process's start time, so that its copies read as alive", async () => {
    const cache = await StageCache.open({ root: join(tempDir("root"), "cache") });
    const name = basename(await cache.stage(sampleTree(tempDir("src"))));
    expect(name.split("-").slice(0, 2)).toEqual([String(process.pid), start]);
    expect(scratchOwnerState(name)).toBe("alive");
    await cache.close();
  });

  it("is dead when the pid now belongs to a process started at another time", async () => {
    const { pid, kernel } = await ownName();
    expect(scratchOwnerState(`${pid}-${Number(start) + 1}-${kernel}-AbC123`)).toBe("dead");
  });

  it("is dead when the pid is a zombie: exited, not yet reaped by its parent", async () => {
    const { kernel } = await ownName();
    // sh starts a short sleep in the background, then becomes a long one, which never reaps it.
    const parent = spawn("sh", ["-c", "sleep 0.1 & echo $!; exec sleep 30"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    try {
      const zombie = await new Promise<string>((resolve) =>
        parent.stdout.once("data", (d) => resolve(String(d).trim())),
      );
      const statOf = () => readFileSync(`/proc/${zombie}/stat`, "utf8");
      await until(() => /\) Z /.test(statOf()), "the background process is a zombie");
      const stat = statOf();
      const zombieStart = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
      expect(scratchOwnerState(`${zombie}-${zombieStart}-${kernel}-AbC123`)).toBe("dead");
    } finally {
      parent.kill("SIGKILL");
    }
  });

  it("cannot be told for another kernel or pid namespace, nor for names without an owner", async () => {
    const { pid, kernel } = await ownName();
    const otherKernel = kernel === "00000000" ? "00000001" : "00000000";
    expect(scratchOwnerState(`${pid}-${start}-${otherKernel}-AbC123`)).toBe("unknown");
    expect(scratchOwnerState(`${pid}-x-x-AbC123`)).toBe("unknown");
    expect(scratchOwnerState("s-AbC123")).toBe("unknown");
  });

  it("is dead when no process has the pid any more", async () => {
    const { kernel } = await ownName();
    const child = spawn(process.execPath, ["-e", ""]);
    const pid = child.pid as number;
    await new Promise((resolve) => child.once("exit", resolve));
    // Reaped by now: `exit` fires once Node has waited for it.
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(scratchOwnerState(`${pid}-${start}-${kernel}-AbC123`)).toBe("dead");
  });

  it("cannot be told when the pid cannot be looked up at all, or the start time was not known", async () => {
    const { pid, kernel } = await ownName();
    // A path to /proc/<5000 digits> is longer than PATH_MAX: ENAMETOOLONG, which says nothing of any process.
    expect(scratchOwnerState(`${"9".repeat(5000)}-${start}-${kernel}-AbC123`)).toBe("unknown");
    expect(scratchOwnerState(`${pid}-x-${kernel}-AbC123`)).toBe("unknown");
  });

  it("cannot be told for a name that only contains an owner's name", async () => {
    const { pid, kernel } = await ownName();
    expect(scratchOwnerState(`old${pid}-${start}-${kernel}-AbC123`)).toBe("unknown");
    expect(scratchOwnerState(`${pid}-${start}-${kernel}-AbC123-copy`)).toBe("unknown");
  });
});

describe("a /proc/<pid>/stat line", () => {
  /** A stat line with `state` as field 3 and `startTime` as field 22 (the real ones have 52 fields). */
  const line = (state: string, startTime: string, name = "node") =>
    `42 (${name}) ${[state, ...Array.from({ length: 18 }, (_, i) => String(i)), startTime, "0", "0"].join(" ")}`;

  it("gives state and start time, whatever spaces and parentheses the process name holds", () => {
    expect(statFields(line("S", "12345", "a) (b c"))).toEqual({ state: "S", startTime: "12345" });
    expect(statFields(readFileSync(`/proc/${process.pid}/stat`, "utf8"))?.state).toMatch(/^[RS]$/);
  });

  it("gives nothing for a line without a state, without a start time, or with a start time not in digits", () => {
    expect(statFields(line("", "12345"))).toBeUndefined();
    expect(statFields("42 (node) S 1 2 3")).toBeUndefined();
    expect(statFields(line("S", "12a"))).toBeUndefined();
    expect(statFields(line("S", "a12"))).toBeUndefined();
  });
});

describe("a scratch directory a cleaner looks at", () => {
  it("is not abandoned when it vanished meanwhile", async () => {
    expect(await isAbandonedScratch(join(tempDir("root"), "s-AbC123"), 60_000)).toBe(false);
  });

  it("is abandoned once unused for exactly staleAfterMs, and with staleAfterMs 0 whatever its times", async () => {
    const path = join(tempDir("root"), "s-AbC123");
    mkdirSync(path);
    // A whole second, so that the mtime read back is exactly this number of milliseconds.
    const used = Math.floor((Date.now() - 10_000) / 1000) * 1000;
    utimesSync(path, new Date(used), new Date(used));
    expect(statSync(path).mtimeMs).toBe(used);
    expect(await isAbandonedScratch(path, 60_000, used + 60_000)).toBe(true);
    expect(await isAbandonedScratch(path, 60_000, used + 59_999)).toBe(false);
    // An mtime in the future (a clock set back) does not shield it from a cleaner for which all is stale.
    expect(await isAbandonedScratch(path, 0, used - 1)).toBe(true);
  });

  it("that is gone already is reported as not removed", async () => {
    expect(await removeScratch(join(tempDir("root"), "s-AbC123"))).toBe(false);
  });
});

describe("a scratch copy that cannot be handed out", () => {
  it("is removed when its copy fails midway, and the failure is thrown", async () => {
    const root = join(tempDir("root"), "cache");
    const cache = await StageCache.open({ root });
    const controller = new AbortController();
    const reason = new Error("stop");
    const copy = cache.stage(sampleTree(tempDir("src")), undefined, {
      signal: controller.signal,
      onProgress: () => controller.abort(reason),
    });
    await expect(copy).rejects.toBe(reason);
    await cache.close();
    expect(readdirSync(join(root, ".scratch"))).toEqual([]);
  });

  it("is reported as the cache root's failure when no directory can be made for a new one", async () => {
    const root = join(tempDir("root"), "cache");
    const source = sampleTree(tempDir("src"));
    const cache = await StageCache.open({ root });
    await cache.stage(source);
    // The scratch directory replaced by a file: the old copy is gone (ENOTDIR), no new one can be made.
    rmSync(join(root, ".scratch"), { recursive: true });
    writeFileSync(join(root, ".scratch"), "");
    const error = await cache.stage(source).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StageCacheError);
    expect(error).toMatchObject({ code: "ENOTDIR", path: root });
    await cache.close();
  });

  kernelTest(
    "chattr",
    "is not replaced when marking it used fails for another reason than its absence",
    async () => {
      const root = join(tempDir("root"), "cache");
      const source = sampleTree(tempDir("src"));
      const cache = await StageCache.open({ root });
      const path = await cache.stage(source);
      execFileSync("chattr", ["+i", path]);
      try {
        await expect(cache.stage(source)).rejects.toMatchObject({ code: "EPERM" });
      } finally {
        execFileSync("chattr", ["-i", path]);
      }
      expect(await cache.stage(source)).toBe(path);
      await cache.close();
    },
  );
});

describe("removing a scratch directory", () => {
  kernelTest("chattr", "throws when it cannot be renamed for removal, and leaves it in place", async () => {
    const scratchDir = join(tempDir("root"), ".scratch");
    const path = writeTree(join(scratchDir, "s-AbC123"), { a: "a" });
    execFileSync("chattr", ["+i", scratchDir]);
    try {
      await expect(removeScratch(path)).rejects.toMatchObject({ code: "EPERM" });
      expect(readdirSync(scratchDir)).toEqual(["s-AbC123"]);
    } finally {
      execFileSync("chattr", ["-i", scratchDir]);
    }
  });

  kernelTest("chattr", "finishes one another cleaner left half-removed under its own name", async () => {
    const scratchDir = join(tempDir("root"), ".scratch");
    const path = writeTree(join(scratchDir, "s-AbC123.deleting"), { a: "a", b: "b" });
    execFileSync("chattr", ["+i", join(path, "b")]);
    try {
      // The code depends on how far the removal got before the immutable file (EPERM, or ENOTDIR).
      await expect(removeScratch(path)).rejects.toHaveProperty("code");
      expect(readdirSync(scratchDir)).toEqual(["s-AbC123.deleting"]);
    } finally {
      execFileSync("chattr", ["-i", join(path, "b")]);
    }
    expect(await removeScratch(path)).toBe(true);
    expect(readdirSync(scratchDir)).toEqual([]);
  });
});
