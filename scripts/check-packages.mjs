#!/usr/bin/env node
// Checks that every package is publishable as it is: builds a tarball with `pnpm pack` (which rewrites
// `workspace:^` to real versions, as publishing does), then runs publint and @arethetypeswrong/cli on that
// tarball. attw uses the esm-only profile: the packages are ESM only on purpose (Node >= 20.19 can
// require() them), and attw's default profile fails every ESM-only package.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const packagesDir = join(root, "packages");
const outDir = mkdtempSync(join(tmpdir(), "cas-stage-pack-"));
let failures = 0;

function run(command, args, cwd) {
  try {
    execFileSync(command, args, { cwd, stdio: "inherit" });
    return true;
  } catch {
    return false;
  }
}

try {
  for (const dir of readdirSync(packagesDir).sort()) {
    const packageDir = join(packagesDir, dir);
    const manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));
    if (manifest.private) continue;
    console.log(`\n== ${manifest.name}`);
    const before = new Set(readdirSync(outDir));
    if (!run("pnpm", ["pack", "--pack-destination", outDir], packageDir)) {
      failures++;
      continue;
    }
    const tarball = readdirSync(outDir).find((name) => !before.has(name));
    const tarballPath = join(outDir, tarball);
    const packed = execFileSync("tar", ["-tzf", tarballPath], { encoding: "utf8" });
    if (packed.includes("workspace:")) failures++;
    // A CLI is a bundle written by the build (bundle-cli.mjs), outside dist: it must be in the tarball.
    for (const bin of Object.values(manifest.bin ?? {})) {
      if (packed.split("\n").includes(join("package", bin))) continue;
      console.error(`${manifest.name}: the tarball lacks its executable ${bin}`);
      failures++;
    }
    if (!run("publint", ["run", "--strict", tarballPath], root)) failures++;
    if (!run("attw", ["--profile", "esm-only", "--format", "table-flipped", tarballPath], root)) failures++;
  }
} finally {
  rmSync(outDir, { recursive: true, force: true });
}

if (failures > 0) {
  console.error(`\ncheck-packages: ${failures} check(s) failed`);
  process.exit(1);
}
console.log("\ncheck-packages: every package passes publint and attw");
