// Benchmark of @cas-stage/stage-cache against what a user would otherwise run.
//
//   pnpm bench [--files 10000] [--mb 100] [--target /dev/shm] [--rounds 5] [--json FILE]
//
// Generates a nested tree of mixed file sizes under --target, then alternates in one run (so disk noise
// hits every contender alike): a cold stage vs `cp -a` vs Node's fs.cp(recursive); a warm hit in a new
// StageCache; a repeated hit in the same one; fingerprintTree and `verify` vs `sha256sum` over the same files; and whole
// processes as a script runs them: `cas-stage-cache stage` cold vs `cp -a`, and a hit vs `node -e 0`.
// Prints medians and the ratios against the goals of the issue (--json also writes them to FILE, for the
// root `npm run bench` report). Needs a build (dist/).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { cp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { fingerprintTree, StageCache } from "../dist/index.js";

const { values } = parseArgs({
  options: {
    files: { type: "string", default: "10000" },
    mb: { type: "string", default: "100" },
    target: { type: "string", default: tmpdir() },
    rounds: { type: "string", default: "5" },
    json: { type: "string" },
  },
});
const files = Number(values.files);
const megabytes = Number(values.mb);
const rounds = Number(values.rounds);
const work = mkdtempSync(join(values.target, "stage-cache-bench-"));
const source = join(work, "source");

/** A deterministic tree: directories 3 levels deep, 90% small files, a few large ones. */
function generate() {
  let seed = 42;
  const random = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const weights = Array.from({ length: files }, () => (random() < 0.9 ? random() : 10 + random() * 60));
  const scale = (megabytes * 1024 * 1024) / weights.reduce((a, b) => a + b, 0);
  const pattern = Buffer.alloc(8 * 1024 * 1024);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 131 + (i >> 9)) & 255;
  for (let i = 0; i < files; i++) {
    const dir = join(source, `pkg${i % 25}`, `mod${i % 9}`, `part${i % 4}`);
    mkdirSync(dir, { recursive: true });
    const size = Math.min(pattern.length - 1024, Math.floor(weights[i] * scale));
    writeFileSync(join(dir, `file${i}.dat`), pattern.subarray(i % 1024, (i % 1024) + size));
  }
}

const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const time = async (fn) => {
  const start = performance.now();
  await fn();
  return performance.now() - start;
};
const fresh = (name) => {
  const path = join(work, name);
  rmSync(path, { recursive: true, force: true });
  return path;
};

generate();
const cli = join(dirname(dirname(fileURLToPath(import.meta.url))), "bin", "cas-stage-cache.js");
const run = (command, args) => execFileSync(command, args, { stdio: "ignore" });
const t = {
  stage: [],
  cpA: [],
  fsCp: [],
  warm: [],
  repeated: [],
  fingerprint: [],
  sha256sum: [],
  verify: [],
  cliCold: [],
  cliCpA: [],
  cliHit: [],
  node: [],
};
for (let round = 0; round < rounds; round++) {
  const root = fresh("cache");
  const cpTarget = fresh("cp-a");
  const fsTarget = fresh("fs-cp");
  const copiers = [
    async () => {
      const cache = await StageCache.open({ root });
      t.stage.push(await time(() => cache.stage(source, "bench")));
      await cache.close();
    },
    async () => t.cpA.push(await time(() => execFileSync("cp", ["-a", source, cpTarget]))),
    async () => t.fsCp.push(await time(() => cp(source, fsTarget, { recursive: true }))),
  ];
  // Rotate the order each round, so no contender always copies right after another's writeback.
  for (let k = 0; k < copiers.length; k++) await copiers[(round + k) % copiers.length]();
  rmSync(cpTarget, { recursive: true, force: true });
  rmSync(fsTarget, { recursive: true, force: true });
  let cache;

  for (let i = 0; i < 20; i++) {
    cache = await StageCache.open({ root });
    t.warm.push(await time(() => cache.stage(source, "bench")));
    await cache.close();
  }
  cache = await StageCache.open({ root });
  await cache.stage(source, "bench");
  const calls = 10_000;
  const elapsed = await time(async () => {
    for (let i = 0; i < calls; i++) await cache.stage(source, "bench");
  });
  t.repeated.push(elapsed / calls);
  t.verify.push(await time(() => cache.verify()));
  await cache.close();
  rmSync(root, { recursive: true, force: true });

  t.fingerprint.push(await time(() => fingerprintTree(source)));
  t.sha256sum.push(
    await time(() =>
      execFileSync("sh", ["-c", "find . -type f -print0 | xargs -0 sha256sum > /dev/null"], { cwd: source }),
    ),
  );

  // Whole processes: both copies start a process, so the CLI's start-up counts as a script would see it.
  const cliRoot = fresh("cli-cache");
  const cliCpTarget = fresh("cli-cp-a");
  const cliStage = ["stage", source, "--fingerprint", "bench", "--cache-dir", cliRoot];
  const processes = [
    async () => t.cliCold.push(await time(() => run(process.execPath, [cli, ...cliStage]))),
    async () => t.cliCpA.push(await time(() => run("cp", ["-a", source, cliCpTarget]))),
  ];
  for (let k = 0; k < processes.length; k++) await processes[(round + k) % processes.length]();
  for (let i = 0; i < 10; i++) {
    t.cliHit.push(await time(() => run(process.execPath, [cli, ...cliStage])));
    t.node.push(await time(() => run(process.execPath, ["-e", "0"])));
  }
  rmSync(cliRoot, { recursive: true, force: true });
  rmSync(cliCpTarget, { recursive: true, force: true });
  process.stderr.write(`round ${round + 1}/${rounds} done\n`);
}

const m = Object.fromEntries(Object.entries(t).map(([key, xs]) => [key, median(xs)]));
const ms = (x) => `${x.toFixed(x < 10 ? 3 : 0)} ms`;
const verdict = (ok) => (ok ? "meets goal" : "MISSES goal");
console.log(`tree: ${files} files, ${megabytes} MB under ${values.target}; ${rounds} rounds; medians`);
console.log(`cold stage          ${ms(m.stage)}`);
console.log(
  `cp -a               ${ms(m.cpA)}   stage/cp-a = ${(m.stage / m.cpA).toFixed(2)}x (goal <= 1.0x: ${verdict(m.stage <= m.cpA)})`,
);
console.log(
  `fs.cp recursive     ${ms(m.fsCp)}   fs.cp/stage = ${(m.fsCp / m.stage).toFixed(1)}x faster (goal >= 5x: ${verdict(m.fsCp / m.stage >= 5)})`,
);
console.log(`warm hit, new cache ${ms(m.warm)}   (goal < 1 ms: ${verdict(m.warm < 1)})`);
console.log(
  `repeated hit        ${(m.repeated * 1000).toFixed(2)} us   (goal < 20 us: ${verdict(m.repeated * 1000 < 20)})`,
);
console.log(
  `fingerprintTree     ${ms(m.fingerprint)}   sha256sum ${ms(m.sha256sum)}   throughput ratio = ${(m.sha256sum / m.fingerprint).toFixed(2)}x (goal >= 0.8x: ${verdict(m.sha256sum / m.fingerprint >= 0.8)})`,
);
console.log(
  `cas-stage-cache stage, cold, whole process ${ms(m.cliCold)}   cp -a ${ms(m.cliCpA)} = ${(m.cliCold / m.cliCpA).toFixed(2)}x (goal <= 1.0x: ${verdict(m.cliCold <= m.cliCpA)})`,
);
console.log(
  `cas-stage-cache stage, hit, whole process  ${ms(m.cliHit)}   node -e 0 ${ms(m.node)} (goal <= 60 ms: ${verdict(m.cliHit <= 60)})`,
);
console.log(
  `verify              ${ms(m.verify)}   sha256sum ${ms(m.sha256sum)}   throughput ratio = ${(m.sha256sum / m.verify).toFixed(2)}x`,
);
if (values.json) {
  writeFileSync(
    values.json,
    JSON.stringify({
      target: values.target,
      filesystemType: statfsSync(work).type,
      rounds,
      files,
      megabytes,
      coldMs: m.stage,
      cpAMs: m.cpA,
      fsCpMs: m.fsCp,
      warmHitMs: m.warm,
      repeatedHitUs: m.repeated * 1000,
      fingerprintMs: m.fingerprint,
      sha256sumMs: m.sha256sum,
      verifyMs: m.verify,
      cliColdMs: m.cliCold,
      cliCpAMs: m.cliCpA,
      cliHitMs: m.cliHit,
      nodeMs: m.node,
    }),
  );
}
rmSync(work, { recursive: true, force: true });
