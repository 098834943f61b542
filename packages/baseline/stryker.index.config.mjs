// The mutation run of index-file.ts (parsing and cutting git's index files) against the unit tests that
// read real indexes (vitest.index.config.ts): `npx stryker run stryker.index.config.mjs` in
// packages/baseline, after a build at the root. Its own temp dir and report, so that it can run beside
// stryker.write.config.mjs.
import { strykerConfig } from "../../scripts/stryker-base.mjs";

const base = strykerConfig({
  mutate: ["src/index-file.ts"],
  vitestConfig: "vitest.index.config.ts",
  entries: ["src/index.ts", "src/cli.ts"],
});

export default {
  ...base,
  concurrency: 1,
  timeoutMS: 10_000,
  tempDirName: ".stryker-tmp-index",
  htmlReporter: { fileName: "reports/mutation-index/index.html" },
  jsonReporter: { fileName: "reports/mutation-index/mutation.json" },
};
