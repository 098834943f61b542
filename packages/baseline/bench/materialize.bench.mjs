// Benchmark: a cold baseline materialization against `git archive | tar -x` and a temporary-index
// `git checkout-index -a --prefix=…` of the same commit, alternating in one run, plus the warm (hit)
// call time and the peak RSS of a cold materialization in a fresh process.
//
//   node bench/materialize.bench.mjs [--files 5000] [--mb 30] [--rounds 7] [--target DIR] [--repo PATH [--base REV]]
//                                    [--json FILE]
//
// --repo benchmarks an existing repository (at --base, default HEAD) instead of a generated one; --keep
// keeps the generated repository (its path is printed) for another run with --repo. --json also writes the
// figures to FILE, for the root `npm run bench` report.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statfsSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { materializeBaseline } from "../dist/index.js";

const { values } = parseArgs({
  options: {
    files: { type: "string", default: "5000" },
    mb: { type: "string", default: "30" },
    rounds: { type: "string", default: "7" },
    target: { type: "string" },
    repo: { type: "string" },
    base: { type: "string" },
    keep: { type: "boolean" },
    json: { type: "string" },
  },
});
const rounds = Number(values.rounds);
const target = resolve(values.target ?? tmpdir());
const scratch = mkdtempSync(join(target, "cas-baseline-bench-"));
const gitEnv = { ...process.env, GIT_CONFIG_NOSYSTEM: "1" };
const git = (cwd, ...args) =>
  execFileSync("git", args, { cwd, env: gitEnv, encoding: "utf8", maxBuffer: 1 << 30 }).trim();

/** A deterministic pseudo-random generator, so every run builds the same repository. */
function generator(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** Generates a repository of `files` files totalling about `mb` MB: nested dirs, symlinks, executables. */
function generateRepo(files, mb) {
  const dir = mkdtempSync(join(tmpdir(), "cas-baseline-bench-repo-"));
  git(dir, "init", "--quiet", "--initial-branch=main");
  for (const [key, value] of [
    ["user.name", "Bench"],
    ["user.email", "bench@example.com"],
    ["gc.auto", "0"],
    ["commit.gpgsign", "false"],
  ]) {
    git(dir, "config", key, value);
  }
  const random = generator(42);
  const average = (mb * 1024 * 1024) / files;
  const words = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "const",
    "return",
    "function",
    "import",
    "export",
    "value",
  ];
  for (let i = 0; i < files; i++) {
    const sub = join(dir, `pkg${i % 20}`, `mod${i % 13}`, `part${i % 5}`);
    mkdirSync(sub, { recursive: true });
    const path = join(sub, `file${i}.txt`);
    if (i % 100 === 99) {
      symlinkSync(`../part${(i + 1) % 5}/file${i - 1}.txt`, path);
      continue;
    }
    // Mostly small text files, a few large ones, as in a real source tree.
    const size = Math.floor(i % 250 === 0 ? average * 40 : average * (0.2 + random() * 1.4));
    const parts = [];
    let length = 0;
    while (length < size) {
      const word = `${words[Math.floor(random() * words.length)]}${Math.floor(random() * 1e6)} `;
      parts.push(word);
      length += word.length;
    }
    writeFileSync(path, parts.join(""), { mode: i % 20 === 0 ? 0o755 : 0o644 });
  }
  git(dir, "add", "--all");
  git(dir, "commit", "--quiet", "-m", "generated");
  // So the warm call exercises the auto-detection ladder: merge-base with origin/main.
  git(dir, "update-ref", "refs/remotes/origin/main", "HEAD");
  return dir;
}

const time = async (work) => {
  const start = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - start) / 1e6;
};
const median = (list) => {
  const sorted = [...list].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

const generated = values.repo === undefined;
const repo = generated ? generateRepo(Number(values.files), Number(values.mb)) : resolve(values.repo);
const commit = git(repo, "rev-parse", `${values.base ?? "HEAD"}^{commit}`);
const fileCount = git(repo, "ls-tree", "-r", "--name-only", commit).split("\n").length;
const bytes = git(repo, "ls-tree", "-r", "-l", commit)
  .split("\n")
  .reduce((sum, line) => sum + (Number(line.split(/\s+/)[3]) || 0), 0);
console.log(`repository: ${repo}${generated ? " (generated)" : ""}`);
console.log(
  `commit ${commit.slice(0, 7)}: ${fileCount} entries, ${(bytes / 1048576).toFixed(1)} MB; target ${target}; ${rounds} rounds`,
);

let slot = 0;
const fresh = () => join(scratch, `run${slot++}`);
const contenders = {
  "cas-baseline (cold)": async () => {
    const cacheRoot = fresh();
    await materializeBaseline({ path: repo, base: commit, cacheRoot, onSubmodule: () => {} });
    return cacheRoot;
  },
  "git archive | tar -x": async () => {
    const dir = fresh();
    mkdirSync(dir);
    execFileSync("sh", ["-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", repo, commit, dir], {
      env: gitEnv,
    });
    return dir;
  },
  "git checkout-index (temp index)": async () => {
    const dir = fresh();
    const env = { ...gitEnv, GIT_INDEX_FILE: join(scratch, `index${slot}`) };
    execFileSync("git", ["read-tree", commit], { cwd: repo, env });
    execFileSync("git", ["checkout-index", "--all", `--prefix=${dir}/`], { cwd: repo, env });
    rmSync(env.GIT_INDEX_FILE, { force: true });
    return dir;
  },
};

const names = Object.keys(contenders);
const timings = Object.fromEntries(names.map((name) => [name, []]));
for (let round = 0; round < rounds + 1; round++) {
  // Rotate the order each round, so no contender always runs with the warmest page cache.
  for (let k = 0; k < names.length; k++) {
    const name = names[(round + k) % names.length];
    let made;
    const ms = await time(async () => {
      made = await contenders[name]();
    });
    rmSync(made, { recursive: true, force: true });
    if (round > 0) timings[name].push(ms); // round 0 warms caches
  }
}

const ours = median(timings["cas-baseline (cold)"]);
console.log("\ncold materialization, median of", rounds);
for (const name of names) {
  const value = median(timings[name]);
  const ratio = name === "cas-baseline (cold)" ? "" : `   cas-baseline / this = ${(ours / value).toFixed(2)}`;
  console.log(`  ${name.padEnd(34)} ${value.toFixed(1).padStart(8)} ms${ratio}`);
}

// Warm: the slot exists; the call resolves the revision (auto ladder for a generated repo) and returns.
const warmRoot = fresh();
const warmOptions = generated
  ? { path: repo, cacheRoot: warmRoot }
  : { path: repo, base: commit, cacheRoot: warmRoot };
await materializeBaseline({ ...warmOptions, onSubmodule: () => {} });
const warm = [];
for (let i = 0; i < 20; i++) warm.push(await time(() => materializeBaseline(warmOptions)));
console.log(
  `\nwarm hit incl. revision resolution (${generated ? "auto ladder" : "explicit commit"}): median ${median(warm).toFixed(1)} ms of 20`,
);

// Peak RSS of one cold materialization in a fresh process.
const probe = `
import { materializeBaseline } from ${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)};
await materializeBaseline({ path: process.argv[1], base: process.argv[2], cacheRoot: process.argv[3], onSubmodule: () => {} });
console.log(process.resourceUsage().maxRSS);`;
const child = spawnSync(process.execPath, ["--input-type=module", "-e", probe, repo, commit, fresh()], {
  encoding: "utf8",
});
if (child.status !== 0) throw new Error(child.stderr);
const baselineRss = spawnSync(process.execPath, ["-e", "console.log(process.resourceUsage().maxRSS)"], {
  encoding: "utf8",
});
console.log(
  `peak RSS of a cold materialization (fresh process): ${(Number(child.stdout) / 1024).toFixed(1)} MB (an empty node process: ${(Number(baselineRss.stdout) / 1024).toFixed(1)} MB)`,
);

if (values.json) {
  const rss = (kb) => Number(kb) / 1024;
  writeFileSync(
    values.json,
    JSON.stringify({
      target,
      filesystemType: statfsSync(scratch).type,
      rounds,
      files: fileCount,
      megabytes: bytes / 1048576,
      coldMs: ours,
      archiveMs: median(timings["git archive | tar -x"]),
      checkoutIndexMs: median(timings["git checkout-index (temp index)"]),
      warmMs: median(warm),
      peakRssMb: rss(child.stdout),
      emptyNodeRssMb: rss(baselineRss.stdout),
    }),
  );
}

rmSync(scratch, { recursive: true, force: true });
if (generated && !values.keep) rmSync(repo, { recursive: true, force: true });
