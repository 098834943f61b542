import { defineConfig } from "vitest/config";
import base from "./vitest.config.js";

// The suite of the targeted mutation reruns (stryker.quick.config.mjs): the test files that exercise
// prune.ts, publish.ts and clean.ts, without the CLI, partial-clone, hostile-repository and long randomized
// runs. A mutant killed here is killed by the whole suite too, so its score is a lower bound of the full one.
// Not mergeConfig: it would append this list to the base config's "test/**/*.test.ts" and run every file.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: [
      "test/prune.test.ts",
      "test/remove.test.ts",
      "test/debris.test.ts",
      "test/publish.test.ts",
      "test/prune-race.test.ts",
      "test/errors.test.ts",
      "test/disk-full.test.ts",
      "test/cache.test.ts",
      "test/materialize.test.ts",
      "test/shared-cache.test.ts",
      "test/checkout-race.test.ts",
    ],
  },
});
