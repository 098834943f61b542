import { formatCount, formatSize } from "./units.js";

/** At most this many redraws a second. */
const REDRAW_INTERVAL_MS = 100;
/** Work that finishes sooner than this never draws a line. */
const FIRST_DRAW_AFTER_MS = 500;

/** Where a piece of work stands, as both CLIs report it. */
export interface ProgressFigures {
  /** What is being done, shown first: `copying`, `hashing`, `writing`. */
  action?: string | undefined;
  /** What is counted: `files`, `objects`. */
  unit: string;
  done: number;
  /** Known only when it is cheap to know: then `done/total` is shown, else a rate. */
  total?: number | undefined;
  bytes?: number | undefined;
  totalBytes?: number | undefined;
}

/**
 * One line of progress on stderr, redrawn in place at most ten times a second, drawn only once the work has
 * taken half a second, and only on a terminal unless forced (`--progress`) or never when refused
 * (`--no-progress`, `--quiet`). {@link clear} erases it; call it before printing anything else and when the
 * work ends or is interrupted (it is idempotent).
 */
export class ProgressLine {
  readonly enabled: boolean;
  readonly #name: string;
  readonly #stream: NodeJS.WriteStream;
  readonly #startedAt = Date.now();
  #drawnAt = 0;
  #visible = false;

  /** `forced`: true always draws, false never, undefined draws on a terminal. */
  constructor(name: string, forced: boolean | undefined, stream: NodeJS.WriteStream = process.stderr) {
    this.#name = name;
    this.#stream = stream;
    this.enabled = forced ?? stream.isTTY === true;
  }

  /** Redraws the line with `figures` (or a ready-made text), if it is time to. */
  update(figures: ProgressFigures | string): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.#startedAt < FIRST_DRAW_AFTER_MS || now - this.#drawnAt < REDRAW_INTERVAL_MS) return;
    this.#drawnAt = now;
    const text = typeof figures === "string" ? figures : describeProgress(figures, now - this.#startedAt);
    this.#stream.write(`\r${this.#name}: ${text}\u001b[K`);
    this.#visible = true;
  }

  /** Erases the line if one is drawn. */
  clear(): void {
    if (!this.#visible) return;
    this.#stream.write("\r\u001b[K");
    this.#visible = false;
  }
}

/**
 * `copying 1,234/5,457 files, 12.0 MiB/45.6 MiB` when totals are known, else
 * `copying 1,234 files, 12.0 MiB (8.10 MiB/s)` (the action, here `copying`, only when given).
 */
export function describeProgress(figures: ProgressFigures, elapsedMs: number): string {
  const { action, unit, done, total, bytes, totalBytes } = figures;
  const counted =
    total === undefined
      ? `${formatCount(done)} ${unit}`
      : `${formatCount(done)}/${formatCount(total)} ${unit}`;
  const count = action ? `${action} ${counted}` : counted;
  if (bytes === undefined) return count;
  if (totalBytes !== undefined) return `${count}, ${formatSize(bytes)}/${formatSize(totalBytes)}`;
  const rate = elapsedMs > 0 ? ` (${formatSize(Math.round((bytes * 1000) / elapsedMs))}/s)` : "";
  return `${count}, ${formatSize(bytes)}${rate}`;
}
