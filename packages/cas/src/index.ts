export { defaultCacheDir } from "./cache-dir.js";
export { CasError, codeOf, messageOf, StageError, type StagePhase } from "./errors.js";
export { pathExists, removeTree, removeTreeQuietly } from "./fs.js";
export { type BuildContext, type StageOptions, type StageResult, stage } from "./stage.js";
export { type SweepStaleTempsOptions, sweepStaleTemps } from "./sweep.js";
export { isStageTempName } from "./temp-name.js";
