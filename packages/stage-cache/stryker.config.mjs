// Mutation testing of @cas-stage/stage-cache: `npm run mutate -- stage-cache` at the repository root.
// Scope: the modules that carry the cache's guarantees. Edit the list as files are split or renamed.
import { strykerConfig } from "../../scripts/stryker-base.mjs";

export default strykerConfig({
  mutate: [
    "src/evict.ts",
    "src/debris.ts",
    "src/cache.ts",
    "src/walk.ts",
    "src/copy.ts",
    "src/fingerprint.ts",
  ],
  entries: ["src/index.ts", "src/cli.ts"],
});
