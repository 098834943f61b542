#!/usr/bin/env node
// `npm start`: the project's main job on its own checkout. Materializes the baseline of this repository
// (the merge-base of HEAD with origin) with the cas-baseline CLI, twice: the first run builds the cache
// slot (or finds it from an earlier run), the second is a cache hit. Extra arguments go to cas-baseline.
import { execFileSync, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const cli = join(root, "packages", "baseline", "bin", "cas-baseline.js");
const args = ["--path", root, ...process.argv.slice(2)];

const remotes = execFileSync("git", ["-C", root, "remote"], { encoding: "utf8" }).split("\n");
if (!remotes.includes("origin") && !args.includes("--base")) {
  console.log("This checkout has no 'origin' remote to take a merge-base with, so HEAD is the baseline.\n");
  args.push("--base", "HEAD");
}

for (const run of ["first run", "second run (should be a cache hit)"]) {
  console.log(`$ cas-baseline ${args.join(" ")}    # ${run}`);
  const result = spawnSync(process.execPath, [cli, ...args], { stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
  console.log();
}
