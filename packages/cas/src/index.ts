export { defaultCacheDir } from "./cache-dir.js";
export {
  CLAIM_GRACE_MS,
  type EntryState,
  EntryStore,
  type EntryStoreHooks,
  type EntryStoreOptions,
  type PublishOptions,
  type PublishOutcome,
  TRASH_GRACE_MS,
} from "./entry-store.js";
export { CasError, codeOf, messageOf, StageError, type StagePhase } from "./errors.js";
export { makeDirectory, pathExists, removeTree, removeTreeQuietly } from "./fs.js";
export {
  type EvictionCandidate,
  type EvictionPolicy,
  type EvictionReport,
  evictLeastRecentlyUsed,
} from "./lru.js";
export { type BuildContext, type StageOptions, type StageResult, stage } from "./stage.js";
export { type SweepStaleTempsOptions, sweepStaleTemps } from "./sweep.js";
export { isStageTempName } from "./temp-name.js";
export { isAbandonedTrash } from "./trash.js";
