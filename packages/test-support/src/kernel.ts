import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it, type TestFunction } from "vitest";

/**
 * Real kernel errors on demand (ENOSPC on a tiny tmpfs, EPERM under `chattr +i`, EROFS under a read-only
 * bind mount, EXDEV across mounts, EACCES for another user, syscall delays from strace), and a probe per
 * capability, so that each test runs or skips for exactly what it needs.
 *
 * A test that needs a missing capability is skipped with the reason in its name. With
 * `CAS_REQUIRE_KERNEL_FAULTS=1` (CI) it runs instead and fails with that reason: a machine that cannot
 * produce the faults must not pass for one that proved them.
 */
export type Capability =
  /** `mount -t tmpfs` (root, or CAP_SYS_ADMIN). */
  | "mountTmpfs"
  /** A read-only bind mount of a directory onto itself. */
  | "bindReadOnly"
  /** `chattr +i` on a directory under `os.tmpdir()`, where the tests' temp dirs live. */
  | "chattr"
  /** `chattr +i` on a file inside a freshly mounted tmpfs (some kernels refuse it there). */
  | "chattrTmpfs"
  /** Running a child process as the unprivileged user `nobody` (needs root). */
  | "otherUser"
  /** `strace -f` with syscall delay injection (needs ptrace). */
  | "strace";

export interface Probe {
  ok: boolean;
  /** Why the capability is missing; empty when it is there. */
  why: string;
}

/** Whether CI demands every real-kernel test to run (`CAS_REQUIRE_KERNEL_FAULTS=1`). */
export const kernelFaultsRequired = process.env.CAS_REQUIRE_KERNEL_FAULTS === "1";

/** The user that tests run a second process as, to get another user's view of a cache. */
export const nobody = { uid: 65534, gid: 65534 } as const;

const probes: Record<Capability, () => void> = {
  mountTmpfs: () => {
    needsLinuxRoot();
    withTempDir((dir) => {
      mountTmpfs(dir, "64k");
      unmount(dir);
    });
  },
  bindReadOnly: () => {
    needsLinuxRoot();
    withTempDir((dir) => {
      bindReadOnly(dir);
      try {
        writeFileSync(join(dir, "f"), "");
        throw new Error("a write under a read-only bind mount succeeded");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EROFS") throw error;
      } finally {
        unmount(dir);
      }
    });
  },
  chattr: () => {
    needsLinuxRoot();
    withTempDir((dir) => {
      chattr("+i", dir);
      chattr("-i", dir);
    });
  },
  chattrTmpfs: () => {
    needsLinuxRoot();
    withTempDir((dir) => {
      mountTmpfs(dir, "64k");
      try {
        const file = join(dir, "f");
        writeFileSync(file, "");
        chattr("+i", file);
        chattr("-i", file);
      } finally {
        unmount(dir);
      }
    });
  },
  otherUser: () => {
    if (process.platform === "win32") throw new Error("needs POSIX users");
    if (process.getuid?.() !== 0) throw new Error("needs root to start a process as nobody");
    const child = spawnSync(process.execPath, ["-e", "process.exit(process.getuid() === 65534 ? 0 : 1)"], {
      ...nobody,
      stdio: "ignore",
    });
    if (child.status !== 0)
      throw new Error(`a child as uid ${nobody.uid} failed: ${child.error ?? child.status}`);
  },
  strace: () => {
    if (process.platform !== "linux") throw new Error("needs Linux strace");
    execFileSync("strace", ["-f", "-qq", "-e", "trace=none", "-e", "inject=getpid:delay_enter=1", "true"], {
      stdio: "ignore",
    });
  },
};

const results = new Map<Capability, Probe>();

/** Whether this machine has `name`; probed once per process, on first use. */
export function capability(name: Capability): Probe {
  let result = results.get(name);
  if (!result) {
    try {
      probes[name]();
      result = { ok: true, why: "" };
    } catch (error) {
      result = { ok: false, why: `${name}: ${firstLine(error)}` };
    }
    results.set(name, result);
  }
  return result;
}

/**
 * `it(name, fn)` when every capability in `needs` is there. Otherwise a skipped test whose name carries the
 * reason, or, under `CAS_REQUIRE_KERNEL_FAULTS=1`, a failing one.
 */
export function kernelTest(
  needs: Capability | Capability[],
  name: string,
  fn: TestFunction,
  timeout?: number,
): void {
  const missing = (Array.isArray(needs) ? needs : [needs]).map(capability).filter((probe) => !probe.ok);
  if (missing.length === 0) {
    it(name, fn, timeout);
    return;
  }
  const why = missing.map((probe) => probe.why).join("; ");
  if (kernelFaultsRequired) {
    it(name, () => {
      throw new Error(`CAS_REQUIRE_KERNEL_FAULTS=1, but this machine lacks ${why}`);
    });
  } else {
    it.skip(`${name} [skipped, missing ${why}]`, fn);
  }
}

/**
 * `describe(name, fn)` when every capability in `needs` is there. Otherwise a skipped suite whose name carries
 * the reason, or, under `CAS_REQUIRE_KERNEL_FAULTS=1`, a suite of one failing test that says what is missing.
 */
export function kernelDescribe(needs: Capability | Capability[], name: string, fn: () => void): void {
  const missing = (Array.isArray(needs) ? needs : [needs]).map(capability).filter((probe) => !probe.ok);
  if (missing.length === 0) {
    describe(name, fn);
    return;
  }
  const why = missing.map((probe) => probe.why).join("; ");
  if (kernelFaultsRequired) {
    describe(name, () => {
      it("has what it needs", () => {
        throw new Error(`CAS_REQUIRE_KERNEL_FAULTS=1, but this machine lacks ${why}`);
      });
    });
  } else {
    describe.skip(`${name} [skipped, missing ${why}]`, fn);
  }
}

/**
 * The tmpfs-mount capability, for suites that gate themselves with `describe.skipIf(!kernelFaults.ok)`.
 * Reading `ok` under `CAS_REQUIRE_KERNEL_FAULTS=1` on a machine without it throws, which fails the suite
 * instead of skipping it.
 */
export const kernelFaults: Probe = {
  get ok() {
    const probe = capability("mountTmpfs");
    if (!probe.ok && kernelFaultsRequired) {
      throw new Error(`CAS_REQUIRE_KERNEL_FAULTS=1, but this machine lacks ${probe.why}`);
    }
    return probe.ok;
  },
  get why() {
    return capability("mountTmpfs").why;
  },
};

/** Mounts a fresh tmpfs of `size` (e.g. "256k") on `dir`. */
export function mountTmpfs(dir: string, size: string): void {
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "pipe" });
}

/** Makes `dir` a read-only view of itself (EROFS on every write below it). */
export function bindReadOnly(dir: string): void {
  execFileSync("mount", ["--bind", dir, dir], { stdio: "pipe" });
  try {
    execFileSync("mount", ["-o", "remount,ro,bind", dir], { stdio: "pipe" });
  } catch (error) {
    unmount(dir);
    throw error;
  }
}

/** Detaches the mount on `dir` (lazily, so an open handle in a dying child cannot keep it busy). */
export function unmount(dir: string): void {
  execFileSync("umount", ["-l", dir], { stdio: "pipe" });
}

/** Sets (`+i`) or clears (`-i`) the immutable attribute: even root then gets EPERM changing `path`. */
export function chattr(flag: "+i" | "-i", path: string): void {
  execFileSync("chattr", [flag, path], { stdio: "pipe" });
}

function needsLinuxRoot(): void {
  if (process.platform !== "linux") throw new Error("needs Linux");
  if (process.getuid?.() !== 0) throw new Error("needs root");
}

function withTempDir(use: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "cas-probe-"));
  try {
    use(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function firstLine(error: unknown): string {
  const stderr = (error as { stderr?: Buffer | string }).stderr?.toString().trim();
  return (stderr || (error instanceof Error ? error.message : String(error))).split("\n")[0] ?? "";
}
