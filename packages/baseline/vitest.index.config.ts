import { defineConfig } from "vitest/config";
import base from "./vitest.config.js";

// The suite of the mutation run of index-file.ts (stryker.index.config.mjs): the unit tests that read real
// indexes git wrote, in-process and fast, so that the parser's infinite-loop mutants time out in seconds.
// A mutant killed here is killed by the whole suite too, so its score is a lower bound of the full one.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: [
      "test/index-file.test.ts",
      "test/manifest.test.ts",
      "test/checkout.test.ts",
      "test/check-trees.test.ts",
    ],
  },
});
