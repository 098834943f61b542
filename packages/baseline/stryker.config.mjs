// Mutation testing of @cas-stage/baseline: `npm run mutate -- baseline` at the repository root.
// Scope: the modules that carry the cache's guarantees. Edit the list as files are split or renamed.
import { strykerConfig } from "../../scripts/stryker-base.mjs";

export default strykerConfig({
  mutate: ["src/prune.ts", "src/tree.ts", "src/write-tree.ts", "src/materialize.ts"],
  entries: ["src/index.ts", "src/cli.ts"],
});
