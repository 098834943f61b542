#!/usr/bin/env node
// Mutation testing with StrykerJS, package by package (slow: many minutes per package on two cores; not
// part of CI). Run from the root:
//
//   npm run mutate               every package that has a stryker.config.mjs
//   npm run mutate -- cas        only packages/cas (names as under packages/)
//
// Each package's stryker.config.mjs says which modules are measured; its report goes to
// packages/<name>/reports/mutation/ (index.html, mutation.json). Exits non-zero if a run fails.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const packagesDir = join(root, "packages");
const configured = readdirSync(packagesDir).filter((name) =>
  existsSync(join(packagesDir, name, "stryker.config.mjs")),
);
const asked = process.argv.slice(2);
const unknown = asked.filter((name) => !configured.includes(name));
if (unknown.length > 0) {
  process.stderr.write(
    `mutate: no stryker.config.mjs in packages/${unknown.join(", packages/")}; configured: ${configured.join(", ")}\n`,
  );
  process.exit(2);
}
const stryker = join(root, "node_modules", ".bin", process.platform === "win32" ? "stryker.cmd" : "stryker");
let failed = 0;
for (const name of asked.length > 0 ? asked : configured) {
  const cwd = join(packagesDir, name);
  process.stdout.write(`\n=== mutation testing packages/${name}\n`);
  const result = spawnSync(stryker, ["run", "stryker.config.mjs"], {
    cwd,
    stdio: "inherit",
    shell: process.platform === "win32",
  });
  if (result.status !== 0) failed++;
  else process.stdout.write(`report: packages/${name}/reports/mutation/index.html\n`);
}
process.exit(failed > 0 ? 1 : 0);
