import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Helpers for tests that make a real kernel produce ENOSPC, EPERM, EROFS and EXDEV. They need root (mount,
 * chattr); `kernelFaults` says whether this machine allows them, and why not.
 */
function probe(): { ok: true } | { ok: false; why: string } {
  if (process.platform !== "linux") return { ok: false, why: "needs Linux mount and chattr" };
  if (process.getuid?.() !== 0) return { ok: false, why: "needs root for mount and chattr" };
  const dir = mkdtempSync(join(tmpdir(), "cas-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir], { stdio: "ignore" });
    execFileSync("umount", [dir], { stdio: "ignore" });
    const file = join(dir, "f");
    writeFileSync(file, "");
    execFileSync("chattr", ["+i", file], { stdio: "ignore" });
    execFileSync("chattr", ["-i", file], { stdio: "ignore" });

    return { ok: true };
  } catch (error) {
    return { ok: false, why: `mount/chattr refused here: ${(error as Error).message.split("\n")[0]}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const kernelFaults = probe();

/** Mounts a fresh tmpfs of `size` (e.g. "256k") on `dir`. */
export function mountTmpfs(dir: string, size: string): void {
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
}

/** Makes `dir` a read-only view of itself (EROFS on every write below it). */
export function bindReadOnly(dir: string): void {
  execFileSync("mount", ["--bind", dir, dir]);
  execFileSync("mount", ["-o", "remount,ro,bind", dir]);
}

export function unmount(dir: string): void {
  execFileSync("umount", ["-l", dir]);
}

export function chattr(flag: "+i" | "-i", path: string): void {
  execFileSync("chattr", [flag, path]);
}
