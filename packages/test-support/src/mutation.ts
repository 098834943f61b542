import { chmodSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Lets mutation testing (StrykerJS) see what child processes prove. A test that spawns a worker running the
 * package's built code passes `env` to it and calls `collect()` once it has exited. Outside a Stryker run
 * both do nothing.
 *
 * Under Stryker the built code is compiled from the instrumented source (see the package's
 * stryker.config.mjs), so the child runs the mutant that is active in the test, which Stryker's own
 * instrumentation reads from `__STRYKER_ACTIVE_MUTANT__`; `CAS_STRYKER_HIT_LIMIT` carries the limit that turns
 * an endless loop into an error; and during Stryker's first run the child writes which mutants it reached to
 * `CAS_STRYKER_COVERAGE_FILE`, which `collect()` credits to the running test, so that Stryker knows to run
 * that test against those mutants. The child side is @cas-stage/test-support/stryker-child (stryker-child.mjs).
 */
export interface ChildBridge {
  env: NodeJS.ProcessEnv;
  collect: () => void;
}

interface StrykerNamespace {
  activeMutant?: string;
  currentTestId?: string;
  hitLimit?: number;
  mutantCoverage?: { static: Record<string, number>; perTest: Record<string, Record<string, number>> };
}

let files = 0;

/** Whether this test process runs under StrykerJS (its instrumented code has made its namespace). */
export function underMutation(): boolean {
  return (globalThis as { __stryker__?: StrykerNamespace }).__stryker__ !== undefined;
}

export function forChild(): ChildBridge {
  const ns = (globalThis as { __stryker__?: StrykerNamespace }).__stryker__;
  if (!ns) return { env: process.env, collect: () => {} };
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (ns.activeMutant !== undefined) env.__STRYKER_ACTIVE_MUTANT__ = String(ns.activeMutant);
  if (ns.hitLimit !== undefined) env.CAS_STRYKER_HIT_LIMIT = String(ns.hitLimit);
  const testId = ns.currentTestId;
  if (testId === undefined) return { env, collect: () => {} };
  // Writable by a child running as another user (the directory is the world-writable tmp dir).
  const file = join(tmpdir(), `cas-stryker-coverage-${process.pid}-${files++}.json`);
  writeFileSync(file, "");
  chmodSync(file, 0o666);
  env.CAS_STRYKER_COVERAGE_FILE = file;
  const collect = () => {
    const text = readFileSync(file, "utf8");
    rmSync(file, { force: true });
    if (!text) return;
    const child = JSON.parse(text) as StrykerNamespace["mutantCoverage"];
    ns.mutantCoverage ??= { static: {}, perTest: {} };
    const forTest = ns.mutantCoverage.perTest[testId] ?? {};
    ns.mutantCoverage.perTest[testId] = forTest;
    for (const counts of [child?.static ?? {}, ...Object.values(child?.perTest ?? {})]) {
      for (const [id, count] of Object.entries(counts)) forTest[id] = (forTest[id] ?? 0) + count;
    }
  };
  return { env, collect };
}
