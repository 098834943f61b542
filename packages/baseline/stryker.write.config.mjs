// A targeted mutation rerun of the write path (the checkout processes, the index they are given and
// rewrite, the manifest) against the tests that exercise it (vitest.write.config.ts).
// `npx stryker run stryker.write.config.mjs` in packages/baseline (after a build at the root).
import { strykerConfig } from "../../scripts/stryker-base.mjs";

export default strykerConfig({
  mutate: ["src/checkout.ts", "src/index-file.ts", "src/manifest.ts"],
  vitestConfig: "vitest.write.config.ts",
  entries: ["src/index.ts", "src/cli.ts"],
});
