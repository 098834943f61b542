import { type CommandContext, formatQuantity, formatSize, UsageError } from "@cas-stage/cas/cli";
import type { StageProgress } from "../copy.js";
import { hitEntry } from "../hit.js";
import { FINGERPRINT_RULE, isValidFingerprint } from "../layout.js";
import { cacheRootOf } from "./cache-root.js";

/**
 * `cas-stage-cache stage <dir>`: prints the path of the entry holding a copy of `<dir>` (stdout) and
 * whether it was a hit (stderr). A hit with `--fingerprint` loads neither the copying code nor the cache's
 * clean-up (see `hitEntry`); a miss stages through `StageCache`, which the signal aborts leaving nothing.
 */
export async function stage({ values, positionals, signal, out }: CommandContext): Promise<void> {
  const source = positionals[0] as string;
  const given = typeof values.fingerprint === "string" ? values.fingerprint : undefined;
  const auto = values.auto === true;
  if ((given === undefined) === !auto) {
    throw new UsageError(
      "stage needs exactly one of --fingerprint FP and --auto (a copy without a key would vanish when the command ends)",
    );
  }
  if (given !== undefined && !isValidFingerprint(given)) {
    throw new UsageError(`--fingerprint: invalid fingerprint ${JSON.stringify(given)}: ${FINGERPRINT_RULE}`);
  }
  const root = await cacheRootOf(values);
  const followExternalSymlinks = values["follow-external-symlinks"] === true;

  let fingerprint = given;
  let totals: StageProgress | undefined;
  if (fingerprint === undefined) {
    const { fingerprintTree } = await import("../fingerprint.js");
    totals = { files: 0, bytes: 0 };
    fingerprint = await fingerprintTree(source, {
      followExternalSymlinks,
      signal,
      onProgress: (hashed) => {
        totals = hashed;
        out.progress.update({ action: "hashing", unit: "files", done: hashed.files, bytes: hashed.bytes });
      },
    });
  }
  const named = `entry ${fingerprint}${auto ? " (the tree's fingerprint)" : ""}`;

  const hit = await hitEntry(root, fingerprint, out.warn);
  if (hit !== undefined) {
    out.result(hit, { path: hit, fingerprint, cache: "hit" });
    out.note(`${named}, cache hit`);
    return;
  }

  const { StageCache } = await import("../cache.js");
  const cache = await StageCache.open({ root, followExternalSymlinks, onWarning: out.warn });
  try {
    let copied: StageProgress = { files: 0, bytes: 0 };
    const path = await cache.stage(source, fingerprint, {
      signal,
      onProgress: (progress) => {
        copied = progress;
        out.progress.update({
          action: "copying",
          unit: "files",
          done: progress.files,
          total: totals?.files,
          bytes: progress.bytes,
          totalBytes: totals?.bytes,
        });
      },
    });
    out.result(path, { path, fingerprint, cache: "miss", copied });
    out.note(
      `${named}, cache miss: copied ${formatQuantity(copied.files, "file")} (${formatSize(copied.bytes)}) into the cache`,
    );
  } finally {
    await cache.close();
  }
}
