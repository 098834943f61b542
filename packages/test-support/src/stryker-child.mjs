// Imported first by every worker process of the tests (as "@cas-stage/test-support/stryker-child"), before
// the package's code. Outside a mutation run it does nothing.
// Under StrykerJS (see @cas-stage/test-support/mutation): applies the hit limit that turns a mutant's endless
// loop into an error, reports which mutants this process reached when it exits, and exits when the test
// process that started it is gone, so that no worker outlives a test runner Stryker killed.
import { writeFileSync } from "node:fs";

const hitLimit = process.env.CAS_STRYKER_HIT_LIMIT;
const coverageFile = process.env.CAS_STRYKER_COVERAGE_FILE;
if (hitLimit || coverageFile || process.env.__STRYKER_ACTIVE_MUTANT__) {
  globalThis.__stryker__ ??= {};
  const ns = globalThis.__stryker__;
  if (hitLimit) {
    ns.hitCount = 0;
    ns.hitLimit = Number(hitLimit);
  }
  if (coverageFile)
    process.on("exit", () => writeFileSync(coverageFile, JSON.stringify(ns.mutantCoverage ?? {})));
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(1);
  }, 500).unref();
}
