#!/usr/bin/env node
// Measures the overhead of stage() over the bare mkdtemp + rename it wraps.
//
//   node bench/stage.bench.mjs [--target DIR] [--rounds N] [--ops N] [--json FILE]
//
// Both sides do the same work per operation: make a temp dir next to a fresh slot, write one small file
// into it, rename it onto the slot. The two are alternated round by round in one run, so the noisy disk
// affects both alike; the ratio of their medians is the figure (goal: at most 1.15).
import { statfsSync } from "node:fs";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { stage } from "../dist/index.js";

const { values } = parseArgs({
  options: {
    target: { type: "string", default: tmpdir() },
    rounds: { type: "string", default: "15" },
    ops: { type: "string", default: "400" },
    json: { type: "string" },
  },
});
const rounds = Number(values.rounds);
const ops = Number(values.ops);
const root = await mkdtemp(join(values.target, "cas-bench-"));

async function bare(dir, i) {
  const final = join(dir, `slot${i}`);
  const staging = await mkdtemp(join(dir, `slot${i}.tmp.`));
  await writeFile(join(staging, "f"), "x");
  await rename(staging, final);
}

async function staged(dir, i) {
  await stage({
    parent: dir,
    final: join(dir, `slot${i}`),
    build: (staging) => writeFile(join(staging, "f"), "x"),
    adopt: () => false,
  });
}

async function timeRound(op, round) {
  const dir = await mkdtemp(join(root, `${op.name}-${round}-`));
  const start = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) await op(dir, i);
  const perOpUs = Number(process.hrtime.bigint() - start) / 1e3 / ops;
  await rm(dir, { recursive: true, force: true });
  return perOpUs;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const samples = { bare: [], staged: [] };
try {
  await timeRound(bare, -1); // warm up both paths once
  await timeRound(staged, -1);
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? [bare, staged] : [staged, bare];
    for (const op of order) samples[op.name].push(await timeRound(op, round));
  }
} finally {
  await rm(root, { recursive: true, force: true });
}

const result = {
  target: values.target,
  filesystemType: statfsSync(values.target).type,
  rounds,
  opsPerRound: ops,
  bareMedianUs: median(samples.bare),
  stageMedianUs: median(samples.staged),
};
result.ratio = result.stageMedianUs / result.bareMedianUs;
result.goal = 1.15;
if (values.json) await writeFile(values.json, JSON.stringify(result));
process.stdout.write(
  [
    `stage() vs bare mkdtemp+rename on ${values.target} (${rounds} rounds x ${ops} ops, alternating)`,
    `  bare mkdtemp + write + rename: ${result.bareMedianUs.toFixed(1)} µs/op (median)`,
    `  stage() with the same build:   ${result.stageMedianUs.toFixed(1)} µs/op (median)`,
    `  ratio: ${result.ratio.toFixed(3)} (goal <= ${result.goal}) ${result.ratio <= result.goal ? "OK" : "OVER GOAL"}`,
    "",
  ].join("\n"),
);
