import { defineConfig, mergeConfig } from "vitest/config";
import base from "./vitest.config.js";

// The suite Stryker runs against each mutant. Worker processes run dist compiled from the mutated source
// (stryker.config.mjs), so the process tests count too. Left out, to keep a run within the hour on two
// cores: the long randomized eight-process race, whose windows the targeted tests (evict-claim, scratch,
// walk-races, the in-process model) reach deterministically.
export default mergeConfig(
  base,
  defineConfig({
    test: {
      exclude: ["test/race.test.ts"],
    },
  }),
);
