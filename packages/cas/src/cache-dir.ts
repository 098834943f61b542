import { homedir } from "node:os";
import { join } from "node:path";

/**
 * The directory under which the cas-stage caches live by default, the same for every package and CLI:
 *
 * - `$CAS_STAGE_CACHE_DIR` when set and non-empty, as given;
 * - otherwise the platform's per-user cache directory plus `/cas-stage`: `$XDG_CACHE_HOME` (when absolute)
 *   or `~/.cache` on Linux and other Unixes, `~/Library/Caches` on macOS, `%LOCALAPPDATA%` (or
 *   `~/AppData/Local`) on Windows.
 *
 * Pure: reads only the given environment and home directory, creates nothing.
 */
export function defaultCacheDir(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
  home: string = homedir(),
): string {
  const override = env.CAS_STAGE_CACHE_DIR;
  if (override) return override;
  return join(userCacheDir(env, platform, home), "cas-stage");
}

function userCacheDir(env: NodeJS.ProcessEnv, platform: NodeJS.Platform, home: string): string {
  if (platform === "win32") return env.LOCALAPPDATA || join(home, "AppData", "Local");
  if (platform === "darwin") return join(home, "Library", "Caches");
  const xdg = env.XDG_CACHE_HOME;
  // The XDG spec says relative values are invalid and must be ignored.
  return xdg?.startsWith("/") ? xdg : join(home, ".cache");
}
