#!/usr/bin/env node
// `npm run bench`: runs every package's benchmark (each alternates our code with its peer in one run) and
// writes BENCHMARKS.md: one table per package with each figure, its peer, the ratio and the goal from the
// package's issue, plus a scaling table (1k, 10k, 50k files) that shows the cost per file.
//
//   npm run bench -- [--target DIR]... [--quick] [--out BENCHMARKS.md]
//
// --target picks the filesystem the trees are written to, and may be given more than once (a tmpfs such as
// /dev/shm shows CPU overhead, the disk shows real life); each gets its own tables. Default: the OS temp dir.
// --quick runs fewer rounds and a smaller scaling table, for a smoke test.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir, totalmem } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const { values } = parseArgs({
  options: {
    target: { type: "string", multiple: true, default: [tmpdir()] },
    quick: { type: "boolean", default: false },
    out: { type: "string", default: join(root, "BENCHMARKS.md") },
  },
});
const quick = values.quick;
const scratch = mkdtempSync(join(tmpdir(), "cas-bench-report-"));

function filesystemType(dir) {
  try {
    return execFileSync("stat", ["-f", "-c", "%T", dir], { encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

/** Runs one package benchmark with `--json` and returns its figures; its own report goes to our stdout. */
function runBench(target, pkg, script, args) {
  const json = join(scratch, `${pkg}-${Math.random().toString(36).slice(2)}.json`);
  const argv = [join(root, "packages", pkg, "bench", script), ...args, "--target", target, "--json", json];
  process.stdout.write(`\n$ node packages/${pkg}/bench/${script} ${argv.slice(1).join(" ")}\n`);
  const run = spawnSync(process.execPath, argv, { cwd: join(root, "packages", pkg), stdio: "inherit" });
  if (run.status !== 0) throw new Error(`${pkg} benchmark failed (exit ${run.status})`);
  return JSON.parse(readFileSync(json, "utf8"));
}

const rounds = (full, small) => String(quick ? small : full);
const ms = (x) => (x < 10 ? `${x.toFixed(2)} ms` : `${x.toFixed(0)} ms`);
const ratio = (x) => `${x.toFixed(2)}×`;
const met = (ok) => (ok ? "met" : "**missed**");
const row = (cells) => `| ${cells.join(" | ")} |`;
const table = (head, rows) => [row(head), row(head.map(() => "---")), ...rows.map(row)].join("\n");

/** The rows of one repository of the baseline benchmark, with the goals of issue 9. */
function baselineRows(repo, emptyNodeRssMb) {
  const real = !repo.kind.startsWith("generated");
  const name = `${real ? `real: ${basename(repo.repo)}` : "generated"} (${repo.files.toLocaleString("en-US")} files, ${repo.megabytes.toFixed(0)} MB)`;
  // The issue sets the cold goals for real repositories; a generated row shows its ratio only.
  const goal = (text, ok) => (real ? [text, met(ok)] : ["— (goal for real repositories)", ""]);
  return [
    [
      name,
      "cold, in-process",
      ms(repo.coldMs),
      "`git archive \\| tar -x`",
      ms(repo.archiveMs),
      ratio(repo.coldMs / repo.archiveMs),
      ...goal("≤ 0.8×", repo.coldMs <= 0.8 * repo.archiveMs),
    ],
    [
      "",
      "cold, in-process",
      ms(repo.coldMs),
      "`git read-tree` + `checkout-index` (temp index)",
      ms(repo.checkoutIndexMs),
      ratio(repo.coldMs / repo.checkoutIndexMs),
      ...goal("≤ 0.8×", repo.coldMs <= 0.8 * repo.checkoutIndexMs),
    ],
    [
      "",
      "`cas-baseline` cold, whole process",
      ms(repo.cliColdMs),
      "`git archive \\| tar -x`, whole process",
      ms(repo.cliArchiveMs),
      ratio(repo.cliColdMs / repo.cliArchiveMs),
      ...goal("≤ 1.1×", repo.cliColdMs <= 1.1 * repo.cliArchiveMs),
    ],
    [
      "",
      "`cas-baseline` cache hit, whole process",
      ms(repo.cliHitMs),
      "`node -e 0`",
      ms(repo.nodeMs),
      "—",
      "≤ 60 ms",
      met(repo.cliHitMs <= 60),
    ],
    [
      "",
      "peak RSS of a cold materialization",
      `${repo.peakRssMb.toFixed(0)} MB`,
      "an empty `node` process",
      `${emptyNodeRssMb.toFixed(0)} MB`,
      "—",
      "flat in repo size (see scaling)",
      "",
    ],
  ];
}

/** Runs every benchmark with its trees on `target` and returns the Markdown section for it. */
function report(target) {
  const cas = runBench(target, "cas", "stage.bench.mjs", [
    "--rounds",
    rounds(21, 5),
    "--ops",
    rounds(400, 100),
  ]);
  // Real repositories join the baseline rows when CAS_BENCH_REPOS names them (see that benchmark).
  const baseline = runBench(target, "baseline", "materialize.bench.mjs", [
    "--rounds",
    rounds(7, 3),
    ...(quick ? ["--commits", "50"] : []),
  ]);
  const stageCache = runBench(target, "stage-cache", "stage-cache.bench.mjs", ["--rounds", rounds(5, 2)]);

  const scales = quick ? [1000, 5000] : [1000, 10_000, 50_000];
  const scaling = scales.map((files) => ({
    files,
    stage: runBench(target, "stage-cache", "stage-cache.bench.mjs", [
      "--files",
      String(files),
      "--mb",
      String(files / 100),
      "--rounds",
      rounds(3, 1),
    ]),
    baseline: runBench(target, "baseline", "materialize.bench.mjs", [
      "--scaling",
      "--files",
      String(files),
      "--mb",
      String((files * 6) / 1000),
      "--rounds",
      rounds(3, 1),
    ]),
  }));

  return [
    `## Trees on \`${target}\` (${filesystemType(target)})`,
    "",
    "### @cas-stage/cas",
    "",
    table(
      ["figure", "ours", "peer", "peer's figure", "ratio", "goal", ""],
      [
        [
          "`stage()` with a one-file build",
          `${cas.stageMedianUs.toFixed(0)} µs/op`,
          "bare `mkdtemp` + write + `rename`",
          `${cas.bareMedianUs.toFixed(0)} µs/op`,
          ratio(cas.ratio),
          "≤ 1.15×",
          met(cas.ratio <= 1.15),
        ],
      ],
    ),
    "",
    "### @cas-stage/baseline",
    "",
    "Generated rows come from a repository the benchmark writes itself (with the history and deltas of a",
    "real one); real rows from the repositories named in `CAS_BENCH_REPOS`. CLI rows time whole processes.",
    "",
    table(
      ["repository", "figure", "ours", "peer", "peer's figure", "ratio", "goal", ""],
      [
        ...baseline.repositories.flatMap((repo) => baselineRows(repo, baseline.emptyNodeRssMb)),
        ...(baseline.partialClone
          ? [
              [
                "generated, blobless clone",
                "`cas-baseline` in a partial clone",
                ms(baseline.partialClone.ms),
                "`git checkout` in an identical clone",
                ms(baseline.partialClone.checkoutMs),
                ratio(baseline.partialClone.ms / baseline.partialClone.checkoutMs),
                "≤ 1.2×",
                met(baseline.partialClone.ms <= 1.2 * baseline.partialClone.checkoutMs),
              ],
            ]
          : []),
      ],
    ),
    "",
    `### @cas-stage/stage-cache (${stageCache.files} files, ${stageCache.megabytes} MB)`,
    "",
    table(
      ["figure", "ours", "peer", "peer's figure", "ratio", "goal", ""],
      [
        [
          "cold `stage`",
          ms(stageCache.coldMs),
          "`cp -a`",
          ms(stageCache.cpAMs),
          ratio(stageCache.coldMs / stageCache.cpAMs),
          "≤ 1.0×",
          met(stageCache.coldMs <= stageCache.cpAMs),
        ],
        [
          "cold `stage`",
          ms(stageCache.coldMs),
          "`fs.cp(…, { recursive: true })`",
          ms(stageCache.fsCpMs),
          `${(stageCache.fsCpMs / stageCache.coldMs).toFixed(1)}× faster`,
          "≥ 5× faster",
          met(stageCache.fsCpMs / stageCache.coldMs >= 5),
        ],
        [
          "warm hit, new `StageCache`",
          ms(stageCache.warmHitMs),
          "—",
          "—",
          "—",
          "< 1 ms",
          met(stageCache.warmHitMs < 1),
        ],
        [
          "repeated hit, same `StageCache`",
          `${stageCache.repeatedHitUs.toFixed(2)} µs`,
          "—",
          "—",
          "—",
          "< 20 µs",
          met(stageCache.repeatedHitUs < 20),
        ],
        [
          "`cas-stage-cache stage`, cold, whole process",
          ms(stageCache.cliColdMs),
          "`cp -a`",
          ms(stageCache.cliCpAMs),
          ratio(stageCache.cliColdMs / stageCache.cliCpAMs),
          "≤ 1.0×",
          met(stageCache.cliColdMs <= stageCache.cliCpAMs),
        ],
        [
          "`cas-stage-cache stage`, a hit, whole process",
          ms(stageCache.cliHitMs),
          "`node -e 0`",
          ms(stageCache.nodeMs),
          "—",
          "≤ 60 ms",
          met(stageCache.cliHitMs <= 60),
        ],
        [
          "`fingerprintTree`",
          ms(stageCache.fingerprintMs),
          "`sha256sum` over the same files",
          ms(stageCache.sha256sumMs),
          `${(stageCache.sha256sumMs / stageCache.fingerprintMs).toFixed(2)}× its throughput`,
          "≥ 0.8× throughput",
          met(stageCache.sha256sumMs / stageCache.fingerprintMs >= 0.8),
        ],
        [
          "`cache.verify()` (every entry against its manifest)",
          ms(stageCache.verifyMs),
          "`sha256sum` over the same files",
          ms(stageCache.sha256sumMs),
          `${(stageCache.sha256sumMs / stageCache.verifyMs).toFixed(2)}× its throughput`,
          "—",
          "",
        ],
      ],
    ),
    "",
    "### Scaling: cost per file",
    "",
    `Stage-cache trees hold 10 KB per file on average, baseline repositories 6 KB; median of ${rounds(3, 1)} round(s) per size.`,
    "",
    table(
      [
        "files",
        "stage-cache cold",
        "per file",
        "`cp -a`",
        "ratio",
        "baseline cold",
        "per file",
        "`git checkout-index`",
        "ratio",
        "baseline peak RSS",
      ],
      scaling.map(({ files, stage, baseline: b }) => [
        files.toLocaleString("en-US"),
        ms(stage.coldMs),
        `${((stage.coldMs * 1000) / files).toFixed(1)} µs`,
        ms(stage.cpAMs),
        ratio(stage.coldMs / stage.cpAMs),
        ms(b.coldMs),
        `${((b.coldMs * 1000) / b.files).toFixed(1)} µs`,
        ms(b.checkoutIndexMs),
        ratio(b.coldMs / b.checkoutIndexMs),
        `${b.peakRssMb.toFixed(0)} MB`,
      ]),
    ),
    "",
  ];
}

const cpu = cpus()[0]?.model ?? "unknown CPU";
const gitVersion = execFileSync("git", ["--version"], { encoding: "utf8" })
  .trim()
  .replace("git version ", "");
const sections = values.target.map((target) => report(resolve(target)));
rmSync(scratch, { recursive: true, force: true });
const lines = [
  "# Benchmarks",
  "",
  `Written by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: ${availableParallelism()} cores (${cpu}),`,
  `${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, git ${gitVersion}${quick ? ", quick mode (fewer rounds)" : ""}.`,
  "Every figure is a median; each peer is measured in the same run, alternating with ours, so disk noise",
  "hits both alike. Ratios are ours / peer for times (lower is better) unless the row says otherwise.",
  "",
  ...sections.flat(),
];

writeFileSync(values.out, lines.join("\n"));
process.stdout.write(`\nwrote ${values.out}\n`);
