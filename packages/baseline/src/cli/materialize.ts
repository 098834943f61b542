import { resolve } from "node:path";
import { type CommandContext, UsageError } from "@cas-stage/cas/cli";
import type { BaselineResult } from "../materialize.js";
import { startLocating } from "../repo.js";
import { cacheRootOf } from "./cache-root.js";

const CACHE_WORDS: Record<BaselineResult["cache"], string> = {
  hit: "cache hit",
  built: "built into the cache",
  adopted: "built by a concurrent run (adopted)",
  temp: "written to a temp dir (not cached: remove it when done)",
};

/**
 * `cas-baseline [materialize]`: prints where `--path` maps in the baseline tree (stdout) and how the commit
 * was picked (stderr). git starts before the rest of the package loads, so on a cache hit module loading
 * overlaps git's run rather than adding to it.
 */
export async function materialize({ values, signal, out }: CommandContext): Promise<undefined> {
  if (values["no-cache"] && values["cache-dir"] !== undefined) {
    throw new UsageError("--cache-dir and --no-cache exclude each other: pass one of them");
  }
  const path = resolve(typeof values.path === "string" ? values.path : ".");
  const base = typeof values.base === "string" ? values.base : undefined;
  startLocating(path, { verify: base ?? "HEAD", upstream: base === undefined });
  const loading = import("../materialize.js");
  const cacheRoot = values["no-cache"] ? undefined : await cacheRootOf(values);
  const { materializeBaseline } = await loading;
  const result = await materializeBaseline({
    path,
    ...(base === undefined ? {} : { base }),
    ...(cacheRoot === undefined ? {} : { cacheRoot }),
    signal,
    onProgress: (written, total) =>
      out.progress.update({ action: "writing", unit: "files", done: written, total }),
    onWarning: out.warn,
    onSubmodule: (submodule) => out.warn(`submodule ${submodule} is not materialized in the baseline`),
  });
  out.result(result.pathOrig, result);
  out.note(`baseline ${result.rev} (${describeSource(result.source)}), ${CACHE_WORDS[result.cache]}`);
  return undefined;
}

/** The library's `source` in the command line's words: `explicit base v1 (via origin/v1)` → `--base v1, via origin/v1`. */
export function describeSource(source: string): string {
  const explicit = /^explicit base (.+?)(?: \((.+)\))?$/s.exec(source);
  if (!explicit) return source;
  return explicit[2] ? `--base ${explicit[1]}, ${explicit[2]}` : `--base ${explicit[1]}`;
}
