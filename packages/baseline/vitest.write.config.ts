import { defineConfig } from "vitest/config";
import base from "./vitest.config.js";

// The suite of the targeted mutation reruns of the write path (stryker.write.config.mjs): the test files
// that exercise checkout.ts, index-file.ts and manifest.ts, without the eviction, CLI, partial-clone and
// long randomized runs. A mutant killed here is killed by the whole suite too, so its score is a lower
// bound of the full one.
// Not mergeConfig: it would append this list to the base config's "test/**/*.test.ts" and run every file.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: [
      "test/checkout.test.ts",
      "test/checkout-race.test.ts",
      "test/index-file.test.ts",
      "test/manifest.test.ts",
      "test/check-trees.test.ts",
      "test/cache.test.ts",
      "test/verify.test.ts",
      "test/materialize.test.ts",
      "test/missing-object.test.ts",
      "test/disk-full.test.ts",
      "test/errors.test.ts",
      "test/hostile.test.ts",
    ],
  },
});
