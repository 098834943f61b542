// `@cas-stage/cas/cli`: the conventions both cas-stage command-line tools share (one parser of durations and
// sizes, one layout of help, one set of exit codes, signals, a closed stdout, JSON errors, progress), so that
// `cas-baseline` and `cas-stage-cache` behave alike. Public and semver-covered, but made for those two tools.
export {
  type CliSpec,
  type CommandContext,
  type CommandSpec,
  EXIT,
  type OptionSpec,
  type OptionValues,
  Output,
  optionValue,
  renderHelp,
  runCli,
  UsageError,
} from "./command-line.js";
export {
  type DebrisFigures,
  describeDebris,
  formatEntryLine,
  type ListedEntry,
} from "./listing.js";
export { describeProgress, type ProgressFigures, ProgressLine } from "./progress.js";
export { formatAge, formatCount, formatQuantity, formatSize, parseDuration, parseSize } from "./units.js";
