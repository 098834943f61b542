// Benchmark: a cold baseline materialization against what a user would otherwise run, alternating ours
// with each peer in one run (medians), on:
//
// - a GENERATED repository with real history, in every run: --files files (default 5,000, about --mb MB,
//   nested directories, symlinks, executables), then --commits commits (default 200) that each edit a
//   few dozen files, then `git repack -adf --depth=50 --window=250`, so most blobs are deltas in a pack,
//   as in a real repository;
// - REAL repositories when given: CAS_BENCH_REPOS=/path/a,/path/b or --repo PATH (repeatable), each at
//   its HEAD (or --base REV); a `git clone --no-checkout --shared` of a public repository is enough.
//
// Rows, for each repository:
// - in-process cold `materializeBaseline` vs `git archive | tar -x` and vs a temporary-index
//   `git read-tree` + `git checkout-index -a --prefix=…`;
// - whole-process `cas-baseline --base <sha>` cold vs `sh -c 'git archive | tar -x'`, and a cache hit
//   through the CLI (the auto-detection ladder) vs bare `node -e 0`;
// - the peak RSS of a cold materialization in a fresh process;
// and, for the generated repository, a partial-clone row: `cas-baseline` in a fresh blobless clone
// (`--filter=blob:none --no-checkout`, over file://) vs `git checkout -f main` in an identical one.
//
//   node bench/materialize.bench.mjs [--files 5000] [--mb 30] [--commits 200] [--rounds 7] [--target DIR]
//                                    [--repo PATH]... [--base REV] [--scaling] [--skip-partial] [--keep]
//                                    [--json FILE]
//
// --scaling measures only the generated repository in-process (and its RSS), for the root report's
// table of 1k/10k/50k files. --keep keeps the generated repository (its path is printed). --json also
// writes the figures to FILE, for the root `npm run bench` report.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { materializeBaseline } from "../dist/index.js";

const { values } = parseArgs({
  options: {
    files: { type: "string", default: "5000" },
    mb: { type: "string", default: "30" },
    commits: { type: "string", default: "200" },
    rounds: { type: "string", default: "7" },
    target: { type: "string" },
    repo: { type: "string", multiple: true, default: [] },
    base: { type: "string" },
    scaling: { type: "boolean", default: false },
    "skip-partial": { type: "boolean", default: false },
    keep: { type: "boolean" },
    json: { type: "string" },
  },
});
const rounds = Number(values.rounds);
const target = resolve(values.target ?? tmpdir());
const scratch = mkdtempSync(join(target, "cas-baseline-bench-"));
const cli = fileURLToPath(new URL("../bin/cas-baseline.js", import.meta.url));
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

const WORDS = ["alpha", "beta", "gamma", "delta", "const", "return", "function", "import", "export", "value"];

/**
 * Generates a repository with `git fast-import`: `files` files totalling about `mb` MB (nested dirs,
 * symlinks, executables), then `commits - 1` commits that each rewrite a few lines of 40 random files,
 * then a full repack with deep deltas (with more than one commit). Its work tree stays empty (the benchmark reads commits only).
 */
function generateRepo(files, mb, commits) {
  const dir = mkdtempSync(join(tmpdir(), "cas-baseline-bench-repo-"));
  git(dir, "init", "--quiet", "--initial-branch=main");
  for (const [key, value] of [
    ["user.name", "Bench"],
    ["user.email", "bench@example.com"],
    ["gc.auto", "0"],
  ]) {
    git(dir, "config", key, value);
  }
  const random = generator(42);
  const average = (mb * 1024 * 1024) / files;
  const text = (size) => {
    const lines = [];
    let length = 0;
    while (length < size) {
      const line = Array.from(
        { length: 8 },
        () => `${WORDS[Math.floor(random() * WORDS.length)]}${Math.floor(random() * 1e4)}`,
      ).join(" ");
      lines.push(line);
      length += line.length + 1;
    }
    return lines;
  };
  const paths = [];
  const contents = [];
  const chunks = [];
  const data = (bytes) => `data ${Buffer.byteLength(bytes)}\n${bytes}\n`;
  let time = 1_700_000_000;
  const commit = (message, edits) => {
    chunks.push(
      `commit refs/heads/main\ncommitter Bench <bench@example.com> ${time++} +0000\n${data(message)}`,
    );
    for (const edit of edits) chunks.push(edit);
  };
  const initial = [];
  for (let i = 0; i < files; i++) {
    const path = `pkg${i % 20}/mod${i % 13}/part${i % 5}/file${i}.txt`;
    paths.push(path);
    if (i % 100 === 99) {
      contents.push(null);
      initial.push(`M 120000 inline ${path}\n${data(`../part${(i + 1) % 5}/file${i - 1}.txt`)}`);
      continue;
    }
    // Mostly small text files, a few large ones, as in a real source tree.
    const lines = text(Math.floor(i % 250 === 0 ? average * 40 : average * (0.2 + random() * 1.4)));
    contents.push(lines);
    initial.push(`M ${i % 20 === 0 ? "100755" : "100644"} inline ${path}\n${data(`${lines.join("\n")}\n`)}`);
  }
  commit("initial", initial);
  for (let c = 1; c < commits; c++) {
    const edits = [];
    for (let e = 0; e < 40; e++) {
      const i = Math.floor(random() * files);
      const lines = contents[i];
      if (!lines) continue;
      for (let k = 0; k < 3; k++) lines[Math.floor(random() * lines.length)] = text(40)[0];
      edits.push(
        `M ${i % 20 === 0 ? "100755" : "100644"} inline ${paths[i]}\n${data(`${lines.join("\n")}\n`)}`,
      );
    }
    commit(`edit ${c}`, edits);
  }
  execFileSync("git", ["fast-import", "--quiet"], {
    cwd: dir,
    env: gitEnv,
    input: chunks.join(""),
    maxBuffer: 1 << 30,
  });
  // A real repository's pack: deep deltas found with a wide window (a one-commit repository has nothing
  // to delta against, so fast-import's own pack is left as it is).
  if (commits > 1) git(dir, "repack", "-adf", "--depth=50", "--window=250", "--quiet");
  git(dir, "symbolic-ref", "HEAD", "refs/heads/main");
  // So the CLI hit exercises the auto-detection ladder: merge-base with origin/main.
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
const run = (command, args, options = {}) => {
  const result = spawnSync(command, args, { env: gitEnv, encoding: "utf8", ...options });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr}`);
  return result;
};

let slot = 0;
const fresh = () => join(scratch, `run${slot++}`);

/**
 * The peak RSS (MB) of `node <args>`, which prints its own `process.resourceUsage().maxRSS`. The node
 * process is started by a shell that forks it, not by this process: Linux carries a process's peak RSS
 * across exec from the process it was forked from, so a child forked from this benchmark (hundreds of MB
 * after generating a large repository) would report this process's peak, not its own.
 */
const peakRssMb = (args) =>
  Number(run("sh", ["-c", '"$0" "$@"; exit $?', process.execPath, ...args]).stdout) / 1024;

/** Runs every contender `rounds + 1` times, rotating the order each round; round 0 only warms caches. */
async function alternate(contenders) {
  const names = Object.keys(contenders);
  const timings = Object.fromEntries(names.map((name) => [name, []]));
  for (let round = 0; round < rounds + 1; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length];
      const prepared = contenders[name].prepare?.();
      let made;
      const ms = await time(async () => {
        made = await contenders[name].run(prepared);
      });
      for (const dir of [made, prepared].flat())
        if (typeof dir === "string") rmSync(dir, { recursive: true, force: true });
      if (round > 0) timings[name].push(ms);
    }
  }
  return Object.fromEntries(names.map((name) => [name, median(timings[name])]));
}

const archiveInto = (repo, commit) => {
  const dir = fresh();
  mkdirSync(dir);
  run("sh", ["-c", 'git -C "$1" archive "$2" | tar -x -C "$3"', "sh", repo, commit, dir]);
  return dir;
};

/** Every row for one repository. */
async function measure(repo, base, kind) {
  const commit = git(repo, "rev-parse", `${base}^{commit}`);
  const listing = git(repo, "ls-tree", "-r", "-l", commit).split("\n");
  const files = listing.length;
  const megabytes = listing.reduce((sum, line) => sum + (Number(line.split(/\s+/)[3]) || 0), 0) / 1048576;
  console.log(`\n${kind} repository ${repo}`);
  console.log(
    `commit ${commit.slice(0, 7)}: ${files} entries, ${megabytes.toFixed(1)} MB; target ${target}; ${rounds} rounds`,
  );

  const cold = await alternate({
    "cas-baseline (in-process, cold)": {
      run: async () => {
        const cacheRoot = fresh();
        await materializeBaseline({ path: repo, base: commit, cacheRoot, onSubmodule: () => {} });
        return cacheRoot;
      },
    },
    "git archive | tar -x": { run: async () => archiveInto(repo, commit) },
    "git read-tree + checkout-index (temp index)": {
      run: async () => {
        const dir = fresh();
        const env = { ...gitEnv, GIT_INDEX_FILE: join(scratch, `index${slot}`) };
        execFileSync("git", ["read-tree", commit], { cwd: repo, env });
        execFileSync("git", ["checkout-index", "--all", `--prefix=${dir}/`], { cwd: repo, env });
        rmSync(env.GIT_INDEX_FILE, { force: true });
        return dir;
      },
    },
  });
  const ours = cold["cas-baseline (in-process, cold)"];
  for (const [name, value] of Object.entries(cold)) {
    const ratio = value === ours ? "" : `   cas-baseline / this = ${(ours / value).toFixed(2)}`;
    console.log(`  ${name.padEnd(46)} ${value.toFixed(1).padStart(8)} ms${ratio}`);
  }

  const row = {
    kind,
    repo,
    files,
    megabytes,
    coldMs: ours,
    archiveMs: cold["git archive | tar -x"],
    checkoutIndexMs: cold["git read-tree + checkout-index (temp index)"],
  };

  if (!values.scaling) {
    const processes = await alternate({
      "cas-baseline CLI, cold": {
        run: async () => {
          const cacheDir = fresh();
          run(process.execPath, [cli, "--path", repo, "--base", commit, "--cache-dir", cacheDir]);
          return cacheDir;
        },
      },
      "sh -c 'git archive | tar -x'": { run: async () => archiveInto(repo, commit) },
    });
    const warmCache = fresh();
    run(process.execPath, [cli, "--path", repo, "--cache-dir", warmCache]);
    const hits = await alternate({
      "cas-baseline CLI, cache hit": {
        run: async () => run(process.execPath, [cli, "--path", repo, "--cache-dir", warmCache]) && undefined,
      },
      "node -e 0": { run: async () => run(process.execPath, ["-e", "0"]) && undefined },
    });
    rmSync(warmCache, { recursive: true, force: true });
    Object.assign(row, {
      cliColdMs: processes["cas-baseline CLI, cold"],
      cliArchiveMs: processes["sh -c 'git archive | tar -x'"],
      cliHitMs: hits["cas-baseline CLI, cache hit"],
      nodeMs: hits["node -e 0"],
    });
    console.log(
      `  ${"cas-baseline CLI, cold".padEnd(46)} ${row.cliColdMs.toFixed(1).padStart(8)} ms   / sh -c 'git archive | tar -x' ${row.cliArchiveMs.toFixed(1)} ms = ${(row.cliColdMs / row.cliArchiveMs).toFixed(2)}`,
    );
    console.log(
      `  ${"cas-baseline CLI, cache hit (auto ladder)".padEnd(46)} ${row.cliHitMs.toFixed(1).padStart(8)} ms   (node -e 0: ${row.nodeMs.toFixed(1)} ms)`,
    );
  }

  // Peak RSS of one cold materialization in a fresh process; the median of three, since a process's
  // peak can jump by tens of megabytes now and then whatever it runs (an empty node process too).
  const probe = `
import { materializeBaseline } from ${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)};
await materializeBaseline({ path: process.argv[1], base: process.argv[2], cacheRoot: process.argv[3], onSubmodule: () => {} });
console.log(process.resourceUsage().maxRSS);`;
  const peaks = [];
  for (let i = 0; i < 3; i++) {
    const rssRoot = fresh();
    peaks.push(peakRssMb(["--input-type=module", "-e", probe, repo, commit, rssRoot]));
    rmSync(rssRoot, { recursive: true, force: true });
  }
  row.peakRssMb = median(peaks);
  console.log(`  peak RSS of a cold materialization (fresh process): ${row.peakRssMb.toFixed(1)} MB`);
  return row;
}

/** `cas-baseline` in a fresh blobless clone vs `git checkout` in an identical one. */
async function measurePartialClone(server) {
  git(server, "config", "uploadpack.allowFilter", "true");
  git(server, "config", "uploadpack.allowAnySHA1InWant", "true");
  const url = `file://${server}`;
  const clone = () => {
    const dir = join(mkdtempSync(join(scratch, "clone-")), "repo");
    run("git", ["clone", "--quiet", "--no-checkout", "--filter=blob:none", "--branch=main", url, dir]);
    return dir;
  };
  const times = await alternate({
    "cas-baseline CLI in a blobless clone": {
      prepare: clone,
      run: async (repo) => {
        const cacheDir = fresh();
        run(process.execPath, [cli, "--path", repo, "--base", "main", "--cache-dir", cacheDir]);
        return cacheDir;
      },
    },
    "git checkout -f main in an identical clone": {
      prepare: clone,
      run: async (repo) => run("git", ["-C", repo, "checkout", "--quiet", "-f", "main"]) && undefined,
    },
  });
  const result = {
    ms: times["cas-baseline CLI in a blobless clone"],
    checkoutMs: times["git checkout -f main in an identical clone"],
  };
  console.log("\npartial clone (generated repository, served over file://)");
  console.log(
    `  cas-baseline CLI ${result.ms.toFixed(1)} ms / git checkout ${result.checkoutMs.toFixed(1)} ms = ${(result.ms / result.checkoutMs).toFixed(2)}`,
  );
  return result;
}

const generated = generateRepo(
  Number(values.files),
  Number(values.mb),
  values.scaling ? 1 : Number(values.commits),
);
const realRepos = [...values.repo, ...(process.env.CAS_BENCH_REPOS ?? "").split(",").filter(Boolean)].map(
  (path) => resolve(path),
);

const repositories = [
  await measure(
    generated,
    "HEAD",
    values.scaling ? "generated (one commit)" : `generated (${values.commits} commits, repacked with deltas)`,
  ),
];
for (const repo of values.scaling ? [] : realRepos)
  repositories.push(await measure(repo, values.base ?? "HEAD", "real"));
const partialClone =
  values.scaling || values["skip-partial"] ? undefined : await measurePartialClone(generated);

const emptyNodeRssMb = median(
  [0, 1, 2].map(() => peakRssMb(["-e", "console.log(process.resourceUsage().maxRSS)"])),
);
console.log(`\nan empty node process peaks at ${emptyNodeRssMb.toFixed(1)} MB`);

if (values.json) {
  const [main] = repositories;
  writeFileSync(
    values.json,
    JSON.stringify({
      target,
      filesystemType: statfsSync(scratch).type,
      rounds,
      // The generated repository's figures, as the root report's tables read them.
      files: main.files,
      megabytes: main.megabytes,
      coldMs: main.coldMs,
      archiveMs: main.archiveMs,
      checkoutIndexMs: main.checkoutIndexMs,
      peakRssMb: main.peakRssMb,
      emptyNodeRssMb,
      repositories,
      partialClone,
    }),
  );
}

rmSync(scratch, { recursive: true, force: true });
if (values.keep) console.log(`kept the generated repository: ${generated}`);
else rmSync(generated, { recursive: true, force: true });
