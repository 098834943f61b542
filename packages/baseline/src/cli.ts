#!/usr/bin/env node
import { parseArgs } from "node:util";
import type { BaselineResult } from "./materialize.js";

const HELP = `cas-baseline: materialize the baseline tree of a git checkout (the merge-base, or an explicit base)

Usage:
  cas-baseline [--path DIR] [--base REV] [--cache-dir DIR | --no-cache] [--json]
  cas-baseline prune --older-than DURATION [--cache-dir DIR] [--json]
  cas-baseline --help

Materialize:
  Picks the baseline commit of the checkout holding DIR, writes its tree (exact blob bytes, executable
  bits, symlinks; no submodules; plus an empty .git marker directory) and prints on stdout where DIR maps
  inside it. One line on stderr says which commit was picked, how, and whether the cache was hit.

  --path DIR         a directory inside a git working tree (default: the current directory)
  --base REV         explicit baseline: REV itself, else origin/REV, else REV fetched from origin into a
                     throwaway repository. Without it: the merge-base of HEAD with the branch's upstream,
                     else with origin/HEAD, origin/main, origin/master (first that resolves).
  --cache-dir DIR    cache root; the tree lives in DIR/baselines/<commit> and is reused by later runs
                     (default: $CAS_STAGE_CACHE_DIR, else the user cache dir + /cas-stage:
                     $XDG_CACHE_HOME or ~/.cache, ~/Library/Caches, %LOCALAPPDATA%)
  --no-cache         write to a fresh temp dir instead; the caller removes it when done
  --json             print the whole result as JSON on stdout instead of the path:
                     {dir, pathOrig, commit, rev, source, persistent, cache}

Prune:
  Removes cache slots not used for DURATION, and debris of interrupted runs. Prints removed paths.

  --older-than DURATION   e.g. 30m, 12h, 7d, 2w (units: ms, s, m, h, d, w)

Never changes the repository. On a terminal, progress (files written / total) appears on stderr when
writing takes longer than a second. Errors print "cas-baseline: <message>" on stderr and exit 1.

Examples:
  cas-baseline                              # baseline of the current directory, cached
  diff -r "$(cas-baseline --path src)" src  # compare src with its baseline
  cas-baseline --base v1.2.0 --json
  cas-baseline --no-cache --path packages/app
  cas-baseline prune --older-than 7d
`;

/** A failure of the command line itself, reported like any other error. */
class UsageError extends Error {}

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text.trim());
  const unit = match?.[2];
  if (!match || unit === undefined) {
    throw new UsageError(`--older-than: cannot read "${text}" as a duration; use e.g. 30m, 12h, 7d`);
  }
  return Number(match[1]) * (UNIT_MS[unit] as number);
}

const CACHE_WORDS: Record<BaselineResult["cache"], string> = {
  hit: "cache hit",
  built: "built into the cache",
  adopted: "built by a concurrent run (adopted)",
  temp: "written to a temp dir (not cached; remove it when done)",
};

const OPTIONS = {
  path: { type: "string" },
  base: { type: "string" },
  "cache-dir": { type: "string" },
  "no-cache": { type: "boolean" },
  json: { type: "boolean" },
  "older-than": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
  } catch (error) {
    // node:util reports unknown or malformed options with an ERR_PARSE_ARGS_* code.
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) {
      throw new UsageError(`${(error as Error).message}; see cas-baseline --help`);
    }
    throw error;
  }
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandLine(argv);
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  if (values["cache-dir"] !== undefined && values["no-cache"]) {
    throw new UsageError("--cache-dir and --no-cache exclude each other");
  }
  const [command, ...extra] = positionals;
  if (extra.length > 0 || (command !== undefined && command !== "prune")) {
    throw new UsageError(
      `unexpected argument "${command === "prune" ? extra[0] : command}"; see cas-baseline --help`,
    );
  }

  if (command === "prune") {
    for (const flag of ["path", "base", "no-cache"] as const) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag} does not apply to prune`);
    }
    if (values["older-than"] === undefined)
      throw new UsageError("prune needs --older-than, e.g. --older-than 7d");
    // Each command loads only what it runs, so a cache hit starts fast.
    const { defaultCacheDir } = await import("@cas-stage/cas");
    const cacheRoot = values["cache-dir"] ?? defaultCacheDir();
    const { pruneBaselines } = await import("./prune.js");
    const report = await pruneBaselines(cacheRoot, { olderThanMs: parseDuration(values["older-than"]) });
    const removed = [...report.removed, ...report.debris].map((entry) => entry.path);
    process.stdout.write(
      values.json ? `${JSON.stringify(removed)}\n` : removed.map((p) => `${p}\n`).join(""),
    );
    process.stderr.write(
      `cas-baseline: pruned ${removed.length} entr${removed.length === 1 ? "y" : "ies"} from ${cacheRoot}\n`,
    );
    return;
  }

  if (values["older-than"] !== undefined) throw new UsageError("--older-than applies only to prune");
  const path = values.path ?? process.cwd();
  // git starts first, and the rest of the package loads while it runs: on a cache hit, git is the wait.
  const { startLocating } = await import("./repo.js");
  startLocating(path, { verify: values.base ?? "HEAD", upstream: values.base === undefined });
  const materialize = import("./materialize.js");
  // The default cache dir is cas's to compute; with --cache-dir, cas is not even loaded on a hit.
  const cacheRoot = values["no-cache"]
    ? undefined
    : (values["cache-dir"] ?? (await import("@cas-stage/cas")).defaultCacheDir());
  const { materializeBaseline } = await materialize;
  const progress = terminalProgress();
  let result: BaselineResult;
  try {
    result = await materializeBaseline({
      path,
      ...(values.base !== undefined ? { base: values.base } : {}),
      ...(cacheRoot !== undefined ? { cacheRoot } : {}),
      ...(progress ? { onProgress: progress.update } : {}),
    });
  } finally {
    progress?.clear();
  }
  process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${result.pathOrig}\n`);
  process.stderr.write(
    `cas-baseline: baseline ${result.rev} (${result.source}), ${CACHE_WORDS[result.cache]}\n`,
  );
}

/** Progress on stderr, only on a terminal and only once writing has taken more than a second. */
function terminalProgress():
  | { update: (written: number, total: number) => void; clear: () => void }
  | undefined {
  if (!process.stderr.isTTY) return undefined;
  const started = Date.now();
  let shownAt = 0;
  let shown = false;
  return {
    update: (written, total) => {
      const now = Date.now();
      if (now - started < 1000 || (now - shownAt < 100 && written < total)) return;
      shownAt = now;
      shown = true;
      process.stderr.write(`\rcas-baseline: writing files ${written}/${total}`);
    },
    clear: () => {
      if (shown) process.stderr.write("\r\x1b[K");
    },
  };
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`cas-baseline: ${message}\n`);
  process.exitCode = 1;
});
