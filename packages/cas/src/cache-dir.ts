import { homedir } from "node:os";
import { posix, win32 } from "node:path";

/**
 * The directory under which the cas-stage caches live by default, the same for every package and CLI:
 *
 * - `$CAS_STAGE_CACHE_DIR` when set and non-empty, as given;
 * - otherwise the platform's per-user cache directory plus `/cas-stage`: `$XDG_CACHE_HOME` (when absolute)
 *   or `~/.cache` on Linux and other Unixes, `~/Library/Caches` on macOS, `%LOCALAPPDATA%` (or
 *   `~/AppData/Local`) on Windows.
 *
 * Pure: reads only the given environment and home directory, creates nothing. The separators are the given
 * platform's, whatever the host's.
 */
export function defaultCacheDir(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
  home: string = homedir(),
): string {
  const override = env.CAS_STAGE_CACHE_DIR;
  if (override) return override;
  return joinFor(platform, userCacheDir(env, platform, home), "cas-stage");
}

function userCacheDir(env: NodeJS.ProcessEnv, platform: NodeJS.Platform, home: string): string {
  if (platform === "win32") return env.LOCALAPPDATA || win32.join(home, "AppData", "Local");
  if (platform === "darwin") return posix.join(home, "Library", "Caches");
  const xdg = env.XDG_CACHE_HOME;
  // The XDG spec says relative values are invalid and must be ignored.
  return xdg?.startsWith("/") ? xdg : posix.join(home, ".cache");
}

function joinFor(platform: NodeJS.Platform, ...parts: string[]): string {
  return platform === "win32" ? win32.join(...parts) : posix.join(...parts);
}
