import { defineConfig, mergeConfig } from "vitest/config";
import base from "./vitest.config.js";

// The suite Stryker runs against each mutant. Worker processes run dist compiled from the mutated source
// (stryker.config.mjs), so the process tests count too. Left out, to keep a run near half an hour on two
// cores: the long randomized process races, whose guarantees the targeted tests (entry-windows,
// entry-crash, and the in-process suite) already pin down mutant by mutant.
export default mergeConfig(
  base,
  defineConfig({
    test: {
      exclude: ["test/race.test.ts", "test/crash.test.ts", "test/entry-race.test.ts"],
    },
  }),
);
