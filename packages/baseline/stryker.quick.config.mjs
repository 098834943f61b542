// A targeted mutation rerun of the eviction, publication and debris modules against the tests that exercise
// them (vitest.quick.config.ts): about 16 minutes on two cores instead of the whole run's hour.
// `npx stryker run stryker.quick.config.mjs` in packages/baseline (after a build at the root).
import { strykerConfig } from "../../scripts/stryker-base.mjs";

export default strykerConfig({
  mutate: ["src/prune.ts", "src/publish.ts", "src/clean.ts"],
  vitestConfig: "vitest.quick.config.ts",
  entries: ["src/index.ts", "src/cli.ts"],
});
