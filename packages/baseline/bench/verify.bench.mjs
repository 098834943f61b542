// Benchmark: verifyBaselines over one slot (against its manifest, and against git's tree) next to
// `sha256sum` and `sha1sum` over the same files, alternating in one run; medians and throughput.
//
//   node bench/verify.bench.mjs [--files 5000] [--mb 32] [--rounds 7] [--target DIR] [--repo PATH [--base REV]]
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { materializeBaseline, verifyBaselines } from "../dist/index.js";

const { values } = parseArgs({
  options: {
    files: { type: "string", default: "5000" },
    mb: { type: "string", default: "32" },
    rounds: { type: "string", default: "7" },
    target: { type: "string" },
    repo: { type: "string" },
    base: { type: "string" },
  },
});
const rounds = Number(values.rounds);
const scratch = mkdtempSync(join(resolve(values.target ?? tmpdir()), "cas-baseline-verify-bench-"));
const gitEnv = { ...process.env, GIT_CONFIG_NOSYSTEM: "1" };
const git = (cwd, ...args) => execFileSync("git", args, { cwd, env: gitEnv, encoding: "utf8" }).trim();

/** A repository of `files` files (a few large, most small, every 100th a symlink) totalling about `mb` MB. */
function generateRepo(files, mb) {
  const dir = mkdtempSync(join(tmpdir(), "cas-baseline-verify-bench-repo-"));
  git(dir, "init", "--quiet", "--initial-branch=main");
  git(dir, "config", "user.name", "Bench");
  git(dir, "config", "user.email", "bench@example.com");
  let state = 42;
  const random = () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const average = (mb * 1024 * 1024) / files;
  for (let i = 0; i < files; i++) {
    const path = join(dir, `pkg${i % 20}`, `mod${i % 13}`, `file${i}.txt`);
    mkdirSync(dirname(path), { recursive: true });
    if (i % 100 === 99) {
      symlinkSync(`file${i - 1}.txt`, path);
      continue;
    }
    const size = Math.floor(i % 250 === 0 ? average * 40 : average * (0.2 + random() * 1.4));
    writeFileSync(path, Buffer.alloc(size, `${i} ${random()}\n`), { mode: i % 20 === 0 ? 0o755 : 0o644 });
  }
  git(dir, "add", "--all");
  git(dir, "commit", "--quiet", "-m", "generated");
  return dir;
}

const repo = values.repo ? resolve(values.repo) : generateRepo(Number(values.files), Number(values.mb));
const commit = git(repo, "rev-parse", `${values.base ?? "HEAD"}^{commit}`);
const cacheRoot = join(scratch, "cache");
const { dir: slot } = await materializeBaseline({
  path: repo,
  base: commit,
  cacheRoot,
  onSubmodule: () => {},
});
const { checkedBytes } = await verifyBaselines(cacheRoot);
const files = Number(
  execFileSync("sh", ["-c", `find "$1" -type f -not -path "$1/.git/*" | wc -l`, "sh", slot]),
);
console.log(
  `slot of ${commit.slice(0, 7)}: ${files} files, ${(checkedBytes / 1048576).toFixed(1)} MB; ${rounds} rounds`,
);

const sum = (tool) => () =>
  execFileSync("sh", [
    "-c",
    `find "$1" -type f -not -path "$1/.git/*" -print0 | xargs -0 ${tool} > /dev/null`,
    "sh",
    slot,
  ]);
const contenders = {
  "verifyBaselines (manifest)": () => verifyBaselines(cacheRoot),
  "verifyBaselines (git tree)": () => verifyBaselines(cacheRoot, { repo }),
  "sha256sum (find | xargs)": sum("sha256sum"),
  "sha1sum (find | xargs)": sum("sha1sum"),
};
const names = Object.keys(contenders);
const timings = Object.fromEntries(names.map((name) => [name, []]));
for (let round = 0; round <= rounds; round++) {
  for (let k = 0; k < names.length; k++) {
    const name = names[(round + k) % names.length];
    const start = process.hrtime.bigint();
    const result = await contenders[name]();
    if (result?.bad) throw new Error(`${name}: the slot did not verify`);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (round > 0) timings[name].push(ms); // round 0 warms the page cache
  }
}
const median = (list) => {
  const sorted = [...list].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};
const reference = median(timings["sha256sum (find | xargs)"]);
console.log(`\nmedian of ${rounds} (page cache warm)`);
for (const name of names) {
  const ms = median(timings[name]);
  const rate = checkedBytes / 1048576 / (ms / 1000);
  console.log(
    `  ${name.padEnd(28)} ${ms.toFixed(1).padStart(8)} ms ${rate.toFixed(0).padStart(6)} MB/s   time / sha256sum = ${(ms / reference).toFixed(2)}`,
  );
}
rmSync(scratch, { recursive: true, force: true });
if (!values.repo) rmSync(repo, { recursive: true, force: true });
