// Mutation testing of @cas-stage/baseline: `npm run mutate -- baseline` at the repository root.
// Scope: the modules that carry the cache's guarantees (prune and its put-back, publishing a slot, debris,
// tree validation, writing the tree). Edit the list as files are split or renamed.
import { strykerConfig } from "../../scripts/stryker-base.mjs";

export default strykerConfig({
  mutate: [
    "src/prune.ts",
    "src/publish.ts",
    "src/clean.ts",
    "src/check-trees.ts",
    "src/tree.ts",
    "src/write-tree.ts",
  ],
  vitestConfig: "vitest.mutate.config.ts",
  entries: ["src/index.ts", "src/cli.ts"],
});
