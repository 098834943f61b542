// One process of the cache torture test. Prints one JSON line per completed call (or reached point) on
// stdout, so the test can assert on every call even when this process is SIGKILLed.
//
//   cache-worker.mjs <role> <cacheRoot> <config as JSON>
//
// Roles:
//   materialize   `calls` times: materialize a random commit, then read the returned tree whole, at once and
//                 again within `minAgeMs`
//   prune         `calls` times: prune everything unused for `minAgeMs` (maxBytes 1)
//   verify        `calls` times: verify every slot (while the others evict them)
//   build-victim  materialize `commit`, blocking the process halfway through writing the tree
//   prune-victim  prune as above, blocking the process at the eviction step `stopAt`
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { mulberry32 } from "@cas-stage/test-support/mulberry32";
import { materializeBaseline, pruneBaselines, verifyBaselines } from "../../dist/index.js";
import { pruneWith } from "../../dist/prune.js";
import { openStore } from "../../dist/store.js";

const [role, cacheRoot, configText] = process.argv.slice(2);
const config = JSON.parse(configText);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const say = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
/** Blocks the whole process (no event loop turn), so a SIGKILL lands exactly here. */
const freeze = () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);

/** Why the tree at `dir` is not the whole tree of `expected`, or undefined when it is. */
function problemWith(dir, expected) {
  try {
    const names = readdirSync(join(dir, "d"));
    if (names.length !== expected.files) return `has ${names.length} of ${expected.files} files`;
    for (let i = 0; i < expected.files; i++) {
      const content = readFileSync(join(dir, "d", `f${i}`), "utf8");
      if (content !== contentOf(expected.tag, i)) return `d/f${i} differs`;
    }
    return undefined;
  } catch (error) {
    return `${error.code ?? "error"}: ${error.message}`;
  }
}

const contentOf = (tag, i) => `${tag}:${i}\n`.repeat(4);

const random = mulberry32(config.seed);
if (role === "materialize") {
  for (let call = 0; call < config.calls; call++) {
    const expected = config.commits[Math.floor(random() * config.commits.length)];
    const result = await materializeBaseline({ path: config.repo, base: expected.commit, cacheRoot });
    const returnedAt = Date.now();
    // Read the tree at once, and again while a run could still be reading it (within the minimum age).
    let problem = problemWith(result.dir, expected);
    if (problem === undefined) {
      await sleep(Math.floor(random() * config.minAgeMs * 0.6));
      problem = problemWith(result.dir, expected);
    }
    say({
      role,
      commit: expected.commit,
      cache: result.cache,
      dir: result.dir,
      problem,
      returnedAt,
      checkedAt: Date.now(),
    });
    // Pauses let slots go unused for longer than the pruners' minimum age, so they get evicted.
    await sleep(Math.floor(random() * 200));
  }
} else if (role === "prune") {
  for (let call = 0; call < config.calls; call++) {
    const report = await pruneBaselines(cacheRoot, { maxBytes: 1, minAgeMs: config.minAgeMs });
    say({ role, removed: report.removed.length, debris: report.debris.length });
    await sleep(Math.floor(random() * 50));
  }
} else if (role === "verify") {
  for (let call = 0; call < config.calls; call++) {
    const report = await verifyBaselines(cacheRoot);
    const bad = report.slots.filter((slot) => slot.status === "bad");
    say({
      role,
      slots: report.slots.length,
      gone: report.slots.length - bad.length - report.slots.filter((slot) => slot.status === "ok").length,
      bad,
    });
    await sleep(Math.floor(random() * 100));
  }
} else if (role === "build-victim") {
  await materializeBaseline({
    path: config.repo,
    base: config.commit,
    cacheRoot,
    onProgress: (written, total) => {
      if (written * 2 < total) return;
      say({ role, reached: "halfway" });
      freeze();
    },
  });
  say({ role, reached: "end" });
} else if (role === "prune-victim") {
  const hooks = {
    [config.stopAt]: () => {
      say({ role, reached: config.stopAt });
      freeze();
    },
  };
  await pruneWith(openStore(cacheRoot, { hooks }), cacheRoot, { maxBytes: 1, minAgeMs: config.minAgeMs });
  say({ role, reached: "end" });
} else {
  throw new Error(`unknown role ${role}`);
}
