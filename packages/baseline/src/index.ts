export { type BaselineResult, type MaterializeOptions, materializeBaseline } from "./baseline.js";
export { BaselineError, type BaselineErrorCode } from "./errors.js";
export { pruneBaselines } from "./prune.js";
export { findRepoRoot } from "./repo.js";
