#!/usr/bin/env node
// Stryker's build step (see stryker-base.mjs), run inside the sandbox, a copy of the package under
// .stryker-tmp: opens the sandbox to other users (Stryker makes it private to root, and some tests run a
// worker as nobody), then compiles dist from the instrumented source and bundles the CLI from it (the CLI
// tests run the bundle). Arguments: the package's entry points.
import { spawnSync } from "node:child_process";
import { chmodSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { bundleCli } from "./bundle-cli.mjs";

for (const dir of ["..", "."]) chmodSync(dir, 0o755);
const tsc = fileURLToPath(import.meta.resolve("typescript/bin/tsc"));
// Options on the command line: the sandbox is too deep for tsconfig's relative "extends".
const options = ["--outDir", "dist", "--rootDir", "src", "--target", "ES2022", "--module", "NodeNext"];
options.push("--moduleResolution", "NodeNext", "--noCheck", "--skipLibCheck");
const result = spawnSync(process.execPath, [tsc, ...options, ...process.argv.slice(2)], { stdio: "inherit" });
if (result.status !== 0) process.exit(result.status ?? 1);
await bundleCli(process.cwd());
