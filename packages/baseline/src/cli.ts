#!/usr/bin/env node
// cas-baseline: the command line of this package. This file holds only what every run needs (the commands'
// help and options); each command loads its own module when it runs, so that a cache hit loads no more than
// it uses (see cli/materialize.ts).
import { readFileSync } from "node:fs";
import { type CliSpec, runCli } from "@cas-stage/cas/cli";

const CACHE_DIR_DEFAULT =
  "default: $CAS_STAGE_CACHE_DIR, else the user cache dir + /cas-stage ($XDG_CACHE_HOME or ~/.cache, ~/Library/Caches, %LOCALAPPDATA%)";

/** The module of the cache commands, loaded only when one of them runs. */
const cacheCommands = () => import("./cli/cache-commands.js");

const spec: CliSpec = {
  name: "cas-baseline",
  version: () =>
    (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string })
      .version,
  summary:
    "Materialize the baseline tree of a git checkout (the merge-base of your branch, or an explicit base) into a shared, crash-safe cache, and manage that cache.",
  defaultCommand: "materialize",
  globalOptions: {
    "cache-dir": {
      type: "string",
      value: "DIR",
      description: `cache root: the trees live in DIR/baselines/<commit> (${CACHE_DIR_DEFAULT})`,
    },
  },
  commands: {
    materialize: {
      usage: "[materialize] [--path DIR] [--base REV] [--cache-dir DIR | --no-cache]",
      summary:
        "write the baseline tree (or reuse it) and print where DIR maps inside it (the default command)",
      description: [
        "Picks the baseline commit of the checkout holding DIR: with --base, REV itself, else origin/REV, else REV fetched from origin into a throwaway repository; without it, the merge-base of HEAD with the branch's upstream, else with origin/HEAD, origin/main, origin/master (the first that resolves). Writes the commit's tree (exact blob bytes, executable bits, symlinks; no submodules; plus an empty .git marker directory) into the cache, unless it is there already, and prints on stdout where DIR maps inside it (an absolute path).",
        "One line on stderr says which commit was picked, how, and what the cache did. The repository is never changed. In CI (actions/checkout), use fetch-depth: 0 or pass --base.",
        'JSON (--json): {"version": 1, "dir", "pathOrig", "commit", "rev", "source", "persistent", "cache"}.',
      ].join("\n\n"),
      options: {
        path: {
          type: "string",
          value: "DIR",
          description: "a directory (or file) inside a git working tree (default: the current directory)",
        },
        base: { type: "string", value: "REV", description: "explicit baseline: a branch, tag or commit" },
        "no-cache": {
          type: "boolean",
          description: "write to a fresh temp dir instead of the cache; remove it when done",
        },
      },
      examples: [
        "cas-baseline                              # baseline of the current directory, cached",
        'diff -r "$(cas-baseline --path src)" src  # compare src with its baseline',
        "cas-baseline --base v1.2.0 --json",
        "cas-baseline --no-cache --path packages/app",
      ],
      run: async (context) => (await import("./cli/materialize.js")).materialize(context),
    },
    ls: {
      usage: "ls [--cache-dir DIR]",
      summary: "list the cached baselines: size, last use, commit, path",
      description: [
        "Prints one line per cached baseline on stdout, most recently used first, and on stderr how much they take and how much debris (builds and removals that were interrupted) the cache holds. Reads only.",
        'JSON: {"version": 1, "root", "entries": [{"commit", "path", "bytes", "files", "lastUsed"}], "debris": [{"kind", "path", "bytes", "stale"}], "totalBytes", "debrisBytes"}.',
      ].join("\n\n"),
      run: async (context) => (await cacheCommands()).ls(context),
    },
    prune: {
      usage: "prune [--older-than DURATION] [--max-size SIZE] [--min-age DURATION] [--dry-run]",
      summary: "remove baselines unused for a while, or the least recently used ones above a size",
      description: [
        "Removes every baseline not used for --older-than, then the least recently used ones while the rest take more than --max-size, but never one used within --min-age (default 10m, or --older-than when shorter): a run that got a baseline can read it that long. Each goes in one rename, so no reader sees it half-deleted. Also removes stale debris. Prints the removed paths on stdout and a summary on stderr.",
        "A first Ctrl-C does not stop a prune (each removal is one rename, and the deletions that follow are short); a second one exits at once, and what it leaves is removed by the next prune or clean.",
        'JSON: {"version": 1, "dryRun", "removed": [entry], "debris": [debris], "repaired": [debris], "freedBytes", "remainingBytes"}.',
      ].join("\n\n"),
      options: {
        "older-than": {
          type: "string",
          value: "DURATION",
          description: "remove baselines unused for this long (units ms s m h d w: 12h, 7d)",
        },
        "max-size": {
          type: "string",
          value: "SIZE",
          description: "then remove the least recently used while the total exceeds this (2GiB, 500MB)",
        },
        "min-age": {
          type: "string",
          value: "DURATION",
          description: "never remove a baseline used more recently than this (default 10m)",
        },
        "dry-run": { type: "boolean", description: "print what would be removed, remove nothing" },
      },
      examples: ["cas-baseline prune --older-than 7d", "cas-baseline prune --max-size 5GiB --dry-run"],
      run: async (context) => (await cacheCommands()).prune(context),
    },
    rm: {
      usage: "rm <commit> [--force]",
      summary: "remove the cached baseline of one commit (a full SHA or a unique prefix)",
      description: [
        "Removes the baseline in one rename, so no reader sees it half-deleted; one used within the last 10 minutes is kept, since a run may be reading it, unless --force. Prints its path on stdout.",
        'JSON: {"version": 1, "removed": entry}.',
      ].join("\n\n"),
      options: {
        force: { type: "boolean", description: "remove it even if it was used within the last 10 minutes" },
      },
      args: [1, 1],
      run: async (context) => (await cacheCommands()).rm(context),
    },
    clean: {
      usage: "clean [--older-than DURATION] [--dry-run]",
      summary: "remove only debris: interrupted builds and removals; never a baseline",
      description: [
        "Removes the temp dirs of builds that died, the trash of removals that died, and directories without a sentinel in a baseline's place, once older than --older-than (default 24h: younger debris may belong to a run in progress); gives back whole baselines whose removal was interrupted. Prints the removed paths on stdout and how much was freed on stderr.",
        'JSON: {"version": 1, "dryRun", "removed": [debris], "repaired": [debris], "freedBytes"}.',
      ].join("\n\n"),
      options: {
        "older-than": {
          type: "string",
          value: "DURATION",
          description: "only debris older than this (default 24h; 0: all, when no other run uses the cache)",
        },
        "dry-run": { type: "boolean", description: "print what would be removed, remove nothing" },
      },
      run: async (context) => (await cacheCommands()).clean(context),
    },
    verify: {
      usage: "verify [--repo DIR] [--fix]",
      summary: "check every cached baseline against git, or against what its build recorded",
      description: [
        "Checks each cached baseline file by file (content, executable bit, symlink target, nothing missing or extra) against the commit's tree in the repository DIR (default: the repository of the current directory, when there is one), or against the manifest its build recorded when the repository lacks the commit. Prints one line per bad baseline on stdout, with the first differing path, and a summary on stderr. With --fix, each bad baseline is moved aside (in one rename), so the next run rebuilds it. Exits 1 when a bad baseline remains.",
        'JSON: {"version": 1, "entries": [entry + {"status": "ok"|"bad"|"gone", "against": "git"|"manifest", "difference"?: {"path", "kind", "expected"?, "found"?}, "fixed"?}], "bad", "fixed", "checkedBytes"}.',
      ].join("\n\n"),
      options: {
        repo: { type: "string", value: "DIR", description: "the git repository to check against" },
        fix: { type: "boolean", description: "move every bad baseline aside, so that it is rebuilt" },
      },
      run: async (context) => (await cacheCommands()).verify(context),
    },
  },
};

await runCli(spec, process.argv.slice(2));
