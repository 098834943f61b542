import { resolve } from "node:path";
import type { OptionValues } from "@cas-stage/cas/cli";

/**
 * The cache root a command works on, absolute: `--cache-dir` (a relative one resolved against the current
 * directory), else the default one of every cas-stage tool (`$CAS_STAGE_CACHE_DIR`, else the user cache
 * dir + `/cas-stage`). Loads cas's default only when it is needed.
 */
export async function cacheRootOf(values: OptionValues): Promise<string> {
  const given = values["cache-dir"];
  if (typeof given === "string") return resolve(given);
  const { defaultCacheDir } = await import("@cas-stage/cas/cache-dir");
  return resolve(defaultCacheDir());
}
