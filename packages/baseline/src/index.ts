export { BaselineError, type BaselineErrorCode } from "./errors.js";
export { type BaselineResult, type MaterializeOptions, materializeBaseline } from "./materialize.js";
export { pruneBaselines } from "./prune.js";
export { findRepoRoot } from "./repo.js";
