export { StageCache, type StageCacheOptions, type StageCallOptions } from "./cache.js";
export type { StageProgress } from "./copy.js";
export { StageCacheError } from "./errors.js";
export type { SweepResult } from "./evict.js";
export { fingerprintTree } from "./fingerprint.js";
export { EVICTION_CLAIM, FINGERPRINT_RULE, STAGE_COMPLETE_SENTINEL } from "./layout.js";
