// Mutation testing of @cas-stage/cas: `npm run mutate -- cas` at the repository root.
// Scope: every module of src (index.ts only re-exports). The surviving mutants and why each is equivalent:
// MUTATION.md.
import { strykerConfig } from "../../scripts/stryker-base.mjs";

export default strykerConfig({
  mutate: ["src/**/*.ts", "!src/index.ts"],
  vitestConfig: "vitest.mutate.config.ts",
});
