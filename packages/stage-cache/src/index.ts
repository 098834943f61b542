export {
  type CacheListing,
  type CleanResult,
  type RemoveResult,
  StageCache,
  type StageCacheOptions,
  type StageCallOptions,
} from "./cache.js";
export type { StageProgress } from "./copy.js";
export type { Debris, DebrisKind } from "./debris.js";
export { StageCacheError } from "./errors.js";
export type { CacheEntry, SweepResult } from "./evict.js";
export { type FingerprintOptions, fingerprintTree } from "./fingerprint.js";
export { EVICTION_CLAIM, FINGERPRINT_RULE, STAGE_COMPLETE_SENTINEL } from "./layout.js";
export type { EntryDifference, VerifiedEntry, VerifyOptions, VerifyResult } from "./verify.js";
export type { SlotProblem } from "./verify-tree.js";
