import { rename } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { codeOf } from "./errors.js";
import { pathExists } from "./fs.js";

/** Error codes that Windows returns while antivirus, indexers or backup tools hold a file open briefly. */
const TRANSIENT_WINDOWS_CODES = new Set(["EPERM", "EACCES", "EBUSY"]);

/** Sleeps between attempts, growing, about one second in all (Go's robustio retries ~2 s, pnpm ~60 s). */
const RETRY_DELAYS_MS = [10, 20, 40, 80, 160, 300, 400];

export interface RenameDirectoryOptions {
  /** Whose rules apply. Default `process.platform`. */
  platform?: NodeJS.Platform;
  /** Waits between attempts; tests pass one that records the schedule instead of waiting. */
  sleep?: (ms: number) => Promise<unknown>;
}

/**
 * Renames the directory `from` onto `to`, as `fs.rename` does, and throws its error when it fails.
 *
 * On Windows only, an EPERM/EACCES/EBUSY failure is retried after sleeps of 10, 20, 40, 80, 160, 300 and
 * 400 ms (about one second in all, eight attempts) while `to` does not exist: those codes are then transient
 * locks. When `to` exists, the same codes mean the slot is taken (a lost race, which Windows reports as
 * EPERM), so the error is thrown at once and the caller's `adopt` decides, instead of making every race
 * loser wait a second.
 */
export async function renameDirectory(
  from: string,
  to: string,
  options: RenameDirectoryOptions = {},
): Promise<void> {
  const platform = options.platform ?? process.platform;
  const wait = options.sleep ?? sleep;
  for (let attempt = 0; ; attempt++) {
    try {
      await rename(from, to);
      return;
    } catch (error) {
      const delay = RETRY_DELAYS_MS[attempt];
      if (platform !== "win32" || delay === undefined || !isTransientWindowsError(error)) throw error;
      if (await pathExists(to)) throw error;
      await wait(delay);
    }
  }
}

function isTransientWindowsError(error: unknown): boolean {
  const code = codeOf(error);
  return code !== undefined && TRANSIENT_WINDOWS_CODES.has(code);
}
