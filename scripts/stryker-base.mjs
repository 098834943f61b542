// The StrykerJS options every package shares; each package's stryker.config.mjs adds its scope.
// See scripts/mutate.mjs for how to run it.
import { fileURLToPath } from "node:url";

const build = fileURLToPath(new URL("stryker-build.mjs", import.meta.url));

/**
 * @param {{ mutate: string[], vitestConfig?: string, entries?: string[] }} scope
 *   `mutate`: the source files whose mutants are measured (globs, relative to the package; a file that does
 *   not exist yet simply adds nothing). `vitestConfig`: the suite run against each mutant (default
 *   vitest.config.ts). `entries`: the package's entry points, compiled into dist (default src/index.ts).
 * @returns {import("@stryker-mutator/api/core").PartialStrykerOptions}
 */
export function strykerConfig({ mutate, vitestConfig = "vitest.config.ts", entries = ["src/index.ts"] }) {
  return {
    // pnpm keeps the runner out of Stryker's own node_modules, where Stryker looks for "@stryker-mutator/*".
    plugins: [fileURLToPath(import.meta.resolve("@stryker-mutator/vitest-runner"))],
    mutate,
    testRunner: "vitest",
    vitest: { configFile: vitestConfig, related: false },
    coverageAnalysis: "perTest",
    // Tests that start worker processes or the CLI run dist: compile it from the instrumented source, so
    // that they run the active mutant too (@cas-stage/test-support/mutation carries it to them).
    buildCommand: `node ${build} ${entries.join(" ")}`,
    concurrency: 2,
    timeoutMS: 30_000,
    reporters: ["clear-text", "progress", "html", "json"],
    htmlReporter: { fileName: "reports/mutation/index.html" },
    jsonReporter: { fileName: "reports/mutation/mutation.json" },
    tempDirName: ".stryker-tmp",
    cleanTempDir: "always",
    thresholds: { high: 90, low: 80, break: null },
    warnings: { unknownOptions: false },
  };
}
