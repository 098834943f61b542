import { defineConfig, mergeConfig } from "vitest/config";
import base from "./vitest.config.js";

// The suite Stryker runs against each mutant. Worker processes run dist compiled from the mutated source
// (stryker.config.mjs), so the process tests count too. Left out, to keep a run within the hour on two
// cores: the long randomized process races and the torture run, whose windows the targeted tests
// (prune-race with its held-open steps, checkout-race, debris) reach deterministically.
export default mergeConfig(
  base,
  defineConfig({
    test: {
      exclude: ["test/race.test.ts", "test/torture.test.ts"],
    },
  }),
);
