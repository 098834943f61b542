#!/usr/bin/env node
// Runs a command of this repository's toolchain on a machine that has only Node, npm and git.
//
//   node scripts/bootstrap.mjs                 install pnpm (pinned) and the workspace dependencies
//   node scripts/bootstrap.mjs turbo run test  …then run a binary of the workspace with pnpm on PATH
//
// Why: corepack cannot be used here and pnpm may not be installed, yet every root script (and turbo, which
// runs each package's scripts through pnpm) needs the pinned pnpm. The pinned version comes from the
// `packageManager` field, so there is one place to bump it. Each step is skipped when already done, so
// repeated runs cost well under a second.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const pnpmVersion = /^pnpm@([^+]+)/.exec(manifest.packageManager)?.[1];
if (!pnpmVersion) fail(`package.json: packageManager must name pnpm, got ${manifest.packageManager}`);

const toolsDir = join(root, ".tools", `pnpm-${pnpmVersion}`);
const pnpmBin = join(toolsDir, "node_modules", ".bin");
const env = {
  ...process.env,
  PATH: [pnpmBin, join(root, "node_modules", ".bin"), process.env.PATH].join(delimiter),
  TURBO_TELEMETRY_DISABLED: "1",
  TURBO_NO_UPDATE_NOTIFIER: "1",
  DO_NOT_TRACK: "1",
};

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, env, stdio: "inherit", ...options });
  if (result.error) fail(`${command}: ${result.error.message}`);
  return result.status ?? 1;
}

function fail(message) {
  process.stderr.write(`bootstrap: ${message}\n`);
  process.exit(1);
}

// Run by the pinned pnpm itself (`pnpm test`): it is already on PATH, nothing to install.
// biome-ignore lint/suspicious/noUndeclaredEnvVars: this script runs before turbo, not as a turbo task.
const runByPinnedPnpm = (process.env.npm_config_user_agent ?? "").startsWith(`pnpm/${pnpmVersion} `);
if (!runByPinnedPnpm && !existsSync(join(pnpmBin, "pnpm"))) {
  process.stderr.write(`bootstrap: installing pnpm ${pnpmVersion} into ${toolsDir}\n`);
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const status = run(
    npm,
    [
      "install",
      "--prefix",
      toolsDir,
      "--no-save",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      `pnpm@${pnpmVersion}`,
    ],
    { shell: process.platform === "win32" },
  );
  if (status !== 0) fail(`could not install pnpm ${pnpmVersion} with npm (exit ${status})`);
}

// pnpm keeps a copy of the lockfile it last installed; when it matches, the install is already done.
const lockfile = join(root, "pnpm-lock.yaml");
const installedLock = join(root, "node_modules", ".pnpm", "lock.yaml");
const upToDate =
  existsSync(lockfile) &&
  existsSync(installedLock) &&
  readFileSync(lockfile, "utf8") === readFileSync(installedLock, "utf8");
if (!upToDate) {
  const status = run("pnpm", ["install", "--frozen-lockfile", "--prefer-offline"]);
  if (status !== 0) fail(`pnpm install failed (exit ${status})`);
}

const [command, ...args] = process.argv.slice(2);
if (command) process.exit(run(command, args, { shell: process.platform === "win32" }));
