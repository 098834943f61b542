#!/usr/bin/env node
// Stryker's build step (see stryker-base.mjs), run inside the sandbox, a copy of the package under
// .stryker-tmp: compiles dist from the instrumented source, then bundles the CLI from it (the CLI tests run
// the bundle). Arguments: the package's entry points. The sandbox is left as Stryker makes it: a test that
// runs a worker as nobody runs a copy of it and of this dist made elsewhere
// (@cas-stage/test-support/other-users).
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { bundleCli } from "./bundle-cli.mjs";

const tsc = fileURLToPath(import.meta.resolve("typescript/bin/tsc"));
// Options on the command line: the sandbox is too deep for tsconfig's relative "extends".
const options = ["--outDir", "dist", "--rootDir", "src", "--target", "ES2022", "--module", "NodeNext"];
options.push("--moduleResolution", "NodeNext", "--noCheck", "--skipLibCheck");
const result = spawnSync(process.execPath, [tsc, ...options, ...process.argv.slice(2)], { stdio: "inherit" });
if (result.status !== 0) process.exit(result.status ?? 1);
await bundleCli(process.cwd());
