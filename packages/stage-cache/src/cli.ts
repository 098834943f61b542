#!/usr/bin/env node
// cas-stage-cache: the command line of this package. This file holds only what every run needs (the
// commands' help and options); each command loads its own module when it runs, so that a hit loads no more
// than it uses (see cli/stage.ts).
import "./cli/short-lived.js";
import { readFileSync } from "node:fs";
import { type CliSpec, runCli } from "@cas-stage/cas/cli";

/** The module of the cache commands, loaded only when one of them runs. */
const cacheCommands = () => import("./cli/cache-commands.js");

const spec: CliSpec = {
  name: "cas-stage-cache",
  version: () =>
    (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string })
      .version,
  summary:
    "A content-addressed, race- and crash-safe cache of directory copies: stage a tree under a fingerprint, reuse the copy, and manage the cache.",
  messagePrefix: "stage-cache: ",
  globalOptions: {
    "cache-dir": {
      type: "string",
      value: "DIR",
      description:
        "the cache's root (default: $CAS_STAGE_CACHE_DIR/stage, else the user cache dir + /cas-stage/stage: $XDG_CACHE_HOME or ~/.cache, ~/Library/Caches, %LOCALAPPDATA%)",
    },
  },
  commands: {
    stage: {
      usage: "stage <dir> (--fingerprint FP | --auto) [--follow-external-symlinks]",
      summary: "copy <dir> into the cache (or reuse the copy) and print the copy's path",
      description: [
        "Copies <dir> into <cache-dir>/<fan-out>/<FP>/ unless a complete copy is there, and prints that path on stdout; one line on stderr says whether it was a cache hit. Dot-directories and node_modules are not copied; symlinks to files are copied as files, those that leave <dir> are skipped with a warning. Do not write into the copy: it is shared.",
        "With --auto the key is the sha256 of the tree (what `fingerprintTree` computes), and the progress line then shows the copy against the tree's totals. Ctrl-C stops the copy and leaves nothing behind.",
        'JSON (--json): {"version": 1, "path", "fingerprint", "cache": "hit"|"miss", "copied"?: {"files", "bytes"}}.',
      ].join("\n\n"),
      options: {
        fingerprint: {
          type: "string",
          value: "FP",
          description: "the key naming the tree's content (a commit SHA, a digest…)",
        },
        auto: { type: "boolean", description: "use the sha256 of the tree as the key" },
        "follow-external-symlinks": {
          type: "boolean",
          description: "copy the files behind symlinks that leave <dir> instead of skipping them",
        },
      },
      args: [1, 1],
      examples: [
        'cas-stage-cache stage ./chart --fingerprint "$(git rev-parse HEAD)"',
        "cas-stage-cache stage ./chart --auto --json",
      ],
      run: async (context) => (await import("./cli/stage.js")).stage(context),
    },
    ls: {
      usage: "ls",
      summary: "list the entries: size, last use, fingerprint, path",
      description: [
        "Prints one line per complete entry on stdout, most recently used first, and on stderr how much they take and how much debris (copies and removals that were interrupted) the cache holds. Reads only.",
        'JSON: {"version": 1, "root", "entries": [{"fingerprint", "path", "bytes", "lastUsed"}], "debris": [{"kind", "path", "bytes", "stale"}], "totalBytes", "debrisBytes"}.',
      ].join("\n\n"),
      run: async (context) => (await cacheCommands()).ls(context),
    },
    sweep: {
      usage: "sweep [--max-size SIZE] [--min-age DURATION] [--dry-run]",
      summary: "evict the least recently used entries down to a size",
      description: [
        "Removes complete entries, least recently used first, until the cache holds at most SIZE, but never one used within --min-age (a run that got an entry can read it that long). Each goes in one rename, so no reader sees it half-deleted. Without --max-size, or with --max-size 0 (no limit), nothing is removed and only the total is reported. Prints the removed paths on stdout and a summary on stderr.",
        'JSON: {"version": 1, "dryRun", "removed": [path], "freedBytes", "totalBytes", "measuredOnly"}.',
      ].join("\n\n"),
      options: {
        "max-size": {
          type: "string",
          value: "SIZE",
          description: "the size to evict down to (2GiB, 500MB, 1048576)",
        },
        "min-age": {
          type: "string",
          value: "DURATION",
          description: "never remove an entry used more recently than this (default 10m; units ms s m h d w)",
        },
        "dry-run": { type: "boolean", description: "print what would be removed, remove nothing" },
      },
      examples: ["cas-stage-cache sweep --max-size 2GiB", "cas-stage-cache sweep --max-size 500MB --dry-run"],
      run: async (context) => (await cacheCommands()).sweep(context),
    },
    rm: {
      usage: "rm <fingerprint> [--force]",
      summary: "remove the entry of one fingerprint",
      description: [
        "Removes the entry in one rename, so no reader sees it half-deleted; one used within the last 10 minutes is kept, since a run may be reading it, unless --force. Prints its path on stdout.",
        'JSON: {"version": 1, "removed": {"fingerprint", "path", "bytes", "lastUsed"}}.',
      ].join("\n\n"),
      options: {
        force: { type: "boolean", description: "remove it even if it was used within the last 10 minutes" },
      },
      args: [1, 1],
      run: async (context) => (await cacheCommands()).rm(context),
    },
    clean: {
      usage: "clean [--older-than DURATION] [--dry-run]",
      summary: "remove only debris: interrupted copies and removals; never an entry",
      description: [
        "Removes the temp dirs of copies that died, scratch copies of processes that died, the trash of removals that died, and incomplete entries, once older than --older-than (default 24h: younger debris may belong to a run in progress); gives back whole entries whose eviction was interrupted. Prints the removed paths on stdout and how much was freed on stderr.",
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
      usage: "verify [--fix]",
      summary: "check every entry against the manifest its copy recorded",
      description: [
        "Re-reads every complete entry and compares it with the manifest its copy recorded in its sentinel: the same directories and files and nothing else, each file's size, content hash and permission bits. Prints one line per bad entry on stdout, with the first differing path, and a summary on stderr. With --fix, each bad entry is moved aside (in one rename), so the next stage copies it again. Exits 1 when a bad entry remains.",
        'JSON: {"version": 1, "entries": [entry + {"status": "ok"|"bad"|"gone", "difference"?: {"path", "problem", "expected", "found"}, "fixed"?}], "bad", "fixed", "checkedBytes"}.',
      ].join("\n\n"),
      options: {
        fix: { type: "boolean", description: "move every bad entry aside, so that it is copied again" },
      },
      run: async (context) => (await cacheCommands()).verify(context),
    },
  },
};

await runCli(spec, process.argv.slice(2));
