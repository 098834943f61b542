#!/usr/bin/env node
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { defaultCacheDir } from "@cas-stage/cas";
import { StageCache, type StageCacheOptions } from "./cache.js";
import { listEntries } from "./evict.js";
import { fingerprintTree } from "./fingerprint.js";
import { Layout } from "./layout.js";
import { formatSize, parseDuration, parseSize } from "./sizes.js";

const NAME = "cas-stage-cache";

const HELP: Record<string, string> = {
  main: `Usage: ${NAME} <command> [options]

A content-addressed, race- and crash-safe cache of directory copies.

Commands:
  stage <dir>   copy <dir> into the cache (or reuse the copy) and print its path
  sweep         evict least-recently-used entries down to a size
  ls            list the entries with size and last use

Options for every command:
  --cache-dir <dir>   cache root (default: $CAS_STAGE_CACHE_DIR/stage, or <user cache dir>/cas-stage/stage)
  -h, --help          show help for a command

Run '${NAME} <command> --help' for the options of a command.`,
  stage: `Usage: ${NAME} stage <dir> (--fingerprint <fp> | --auto) [options]

Copies <dir> into <cache-dir>/<fp[0:2]>/<fp>/ unless a complete copy is there, and prints that path.
Dot-directories and node_modules are not copied; symlinks to files are copied as files.

Options:
  --fingerprint <fp>          key naming the tree's content (a commit SHA, a digest…)
  --auto                      use the sha256 of the tree (fingerprintTree) as the key
  --follow-external-symlinks  copy files behind symlinks that leave <dir> (skipped with a warning otherwise)
  --cache-dir <dir>           cache root
  -h, --help                  show this help`,
  sweep: `Usage: ${NAME} sweep [--max-size <size>] [--json] [options]

Removes complete entries, least recently used first, until the cache holds at most <size>. Entries used
within --min-age are never removed. Without --max-size, or with --max-size 0 (no limit), nothing is removed
and only the total is reported.

Options:
  --max-size <size>   e.g. 2GiB, 500MB, 1048576
  --min-age <time>    e.g. 10m (default), 30s, 0
  --json              print {removed, freedBytes, totalBytes, measuredOnly} as JSON
  --cache-dir <dir>   cache root
  -h, --help          show this help`,
  ls: `Usage: ${NAME} ls [--json] [options]

Lists the complete entries: size, last use and fingerprint, most recently used first.

Options:
  --json              print a JSON array of { fingerprint, path, bytes, lastUsed }
  --cache-dir <dir>   cache root
  -h, --help          show this help`,
};

class UsageError extends Error {}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "-h" || command === "--help" || command === "help") {
    process.stdout.write(`${HELP.main}\n`);
    if (command === undefined) process.exitCode = 1;
    return;
  }
  if (command === "stage") return stageCommand(rest);
  if (command === "sweep") return sweepCommand(rest);
  if (command === "ls") return lsCommand(rest);
  throw new UsageError(`unknown command ${JSON.stringify(command)}; run '${NAME} --help'`);
}

const common = {
  "cache-dir": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function cacheOptions(cacheDir: string | undefined): StageCacheOptions {
  return {
    root: resolve(cacheDir ?? `${defaultCacheDir()}/stage`),
    onWarning: (message, path) => process.stderr.write(`${NAME}: warning: ${message} (${path})\n`),
  };
}

async function stageCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...common,
      fingerprint: { type: "string" },
      auto: { type: "boolean" },
      "follow-external-symlinks": { type: "boolean" },
    },
  });
  if (values.help) return void process.stdout.write(`${HELP.stage}\n`);
  const [dir, extra] = positionals;
  if (dir === undefined || extra !== undefined) throw new UsageError("stage takes exactly one directory");
  if ((values.fingerprint === undefined) === !values.auto) {
    throw new UsageError(
      "stage needs exactly one of --fingerprint <fp> or --auto (a copy without a key would vanish on exit)",
    );
  }
  const followExternalSymlinks = values["follow-external-symlinks"] ?? false;
  const fingerprint = values.fingerprint ?? (await fingerprintTree(dir, { followExternalSymlinks }));
  const cache = await StageCache.open({ ...cacheOptions(values["cache-dir"]), followExternalSymlinks });
  const progress = progressReporter();
  try {
    const path = await cache.stage(dir, fingerprint, { onProgress: progress.update });
    progress.finish();
    process.stdout.write(`${path}\n`);
  } finally {
    progress.finish();
    await cache.close();
  }
}

/** Progress on stderr, only on a terminal and only once a copy has taken more than a second. */
function progressReporter() {
  const started = Date.now();
  let lastDrawn = 0;
  let drawn = false;
  return {
    update: ({ files, bytes }: { files: number; bytes: number }) => {
      if (!process.stderr.isTTY) return;
      const now = Date.now();
      if (now - started < 1000 || now - lastDrawn < 100) return;
      lastDrawn = now;
      drawn = true;
      process.stderr.write(`\r${NAME}: copied ${files} files, ${formatSize(bytes)}\u001b[K`);
    },
    finish: () => {
      if (drawn) process.stderr.write("\r\u001b[K");
      drawn = false;
    },
  };
}

async function sweepCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...common,
      "max-size": { type: "string" },
      "min-age": { type: "string" },
      json: { type: "boolean" },
    },
  });
  if (values.help) return void process.stdout.write(`${HELP.sweep}\n`);
  if (positionals.length > 0) throw new UsageError("sweep takes no arguments");
  const maxBytes = values["max-size"] === undefined ? 0 : parseSize(values["max-size"]);
  const minAgeMs = values["min-age"] === undefined ? undefined : parseDuration(values["min-age"]);
  const cache = await StageCache.open({
    ...cacheOptions(values["cache-dir"]),
    maxBytes,
    ...(minAgeMs === undefined ? {} : { minAgeMs }),
  });
  try {
    const result = await cache.sweep();
    if (values.json) return void process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    if (result.measuredOnly) {
      return void process.stdout.write(
        `nothing removed: no size limit (--max-size absent or 0); ${formatSize(result.totalBytes)} in complete entries\n`,
      );
    }
    const overCap = maxBytes > 0 && result.totalBytes > maxBytes;
    process.stdout.write(
      `removed ${result.removed.length} entries, freed ${formatSize(result.freedBytes)}, ${formatSize(result.totalBytes)} remain` +
        `${overCap ? ` (over ${formatSize(maxBytes)}: the rest was used within --min-age ${values["min-age"] ?? "10m"})` : ""}\n`,
    );
  } finally {
    await cache.close();
  }
}

async function lsCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options: { ...common, json: { type: "boolean" } } });
  if (values.help) return void process.stdout.write(`${HELP.ls}\n`);
  if (positionals.length > 0) throw new UsageError("ls takes no arguments");
  const root = cacheOptions(values["cache-dir"]).root as string;
  const entries = (await listEntries(new Layout(root))).sort((a, b) => b.lastUsedMs - a.lastUsedMs);
  if (values.json) {
    const json = entries.map(({ fingerprint, path, bytes, lastUsedMs }) => ({
      fingerprint,
      path,
      bytes,
      lastUsed: new Date(lastUsedMs).toISOString(),
    }));
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    return;
  }
  const now = Date.now();
  for (const entry of entries) {
    const size = formatSize(entry.bytes).padStart(10);
    process.stdout.write(`${size}  ${ago(now - entry.lastUsedMs).padEnd(14)}  ${entry.fingerprint}\n`);
  }
  const total = entries.reduce((sum, entry) => sum + entry.bytes, 0);
  process.stdout.write(`${entries.length} entries, ${formatSize(total)} in ${root}\n`);
}

function ago(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86_400)} days ago`;
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = error instanceof Error ? error.message.replace(/^stage-cache: /, "") : String(error);
  process.stderr.write(`${NAME}: ${message}\n`);
  process.exitCode = 1;
});
