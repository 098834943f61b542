export { type CleanOptions, type CleanReport, cleanBaselines } from "./clean.js";
export { BaselineError, type BaselineErrorCode } from "./errors.js";
export { type BaselineListing, listBaselines } from "./list.js";
export { type BaselineResult, type MaterializeOptions, materializeBaseline } from "./materialize.js";
export {
  type PruneOptions,
  type PruneReport,
  pruneBaselines,
  type RemoveOptions,
  removeBaseline,
} from "./prune.js";
export { findRepoRoot } from "./repo.js";
export type { CachedBaseline, DebrisEntry, DebrisKind } from "./scan.js";
export {
  type SlotDifference,
  type VerifiedSlot,
  type VerifyOptions,
  type VerifyReport,
  verifyBaselines,
} from "./verify.js";
