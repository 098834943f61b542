// Mutation testing of @cas-stage/stage-cache: `npm run mutate -- stage-cache` at the repository root.
// Scope: the modules that carry the cache's guarantees (eviction and its claims, debris, scratch copies,
// the sentinel, slot names, the descriptor walk and the copy). Edit the list as files are split or renamed.
import { strykerConfig } from "../../scripts/stryker-base.mjs";

export default strykerConfig({
  mutate: [
    "src/evict.ts",
    "src/debris.ts",
    "src/scratch.ts",
    "src/single-flight.ts",
    "src/sentinel.ts",
    "src/layout.ts",
  ],
  vitestConfig: "vitest.mutate.config.ts",
  entries: ["src/index.ts", "src/cli.ts"],
});
