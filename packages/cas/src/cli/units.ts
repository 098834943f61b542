/**
 * Durations and sizes as both cas-stage CLIs read and print them. One parser each, so the two tools cannot
 * disagree about what `10m` or `2GiB` means.
 */

const DURATION_UNITS_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
};

/**
 * Parses a duration: a number and a unit, `ms`, `s`, `m` (minutes), `h`, `d` or `w` (`500ms`, `30s`, `10m`,
 * `1.5h`, `7d`, `2w`); `0` alone is zero. Any other number without a unit is refused, since `600` could mean
 * milliseconds or seconds. Throws a RangeError whose message names the accepted forms.
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (/^0+(?:\.0+)?$/.test(trimmed)) return 0;
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/i.exec(trimmed);
  const unit = match?.[2]?.toLowerCase();
  const scale = unit === undefined ? undefined : DURATION_UNITS_MS[unit];
  if (!match?.[1] || scale === undefined) {
    const hint = /^\d+(?:\.\d+)?$/.test(trimmed) ? ` (a unit is required: ${trimmed}s? ${trimmed}m?)` : "";
    throw new RangeError(
      `invalid duration ${JSON.stringify(text)}${hint}: use a number and a unit, ms, s, m, h, d or w (e.g. 500ms, 30s, 10m, 12h, 7d)`,
    );
  }
  return Math.round(Number(match[1]) * scale);
}

/**
 * Parses a byte size: a plain number of bytes (`1048576`), binary units (`512KiB`, `2GiB`, and `512K`, `2G`
 * as `du` reads them) or decimal ones (`500MB`, `1GB`); case-insensitive, decimals allowed (`1.5GiB`).
 * Throws a RangeError whose message names the accepted forms.
 */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const scale = SIZE_UNITS[(match?.[2] || "b").toLowerCase()];
  if (!match?.[1] || scale === undefined) {
    throw new RangeError(
      `invalid size ${JSON.stringify(text)}: use bytes or a number and a unit (e.g. 1048576, 512KiB, 2GiB, 500MB)`,
    );
  }
  return Math.floor(Number(match[1]) * scale);
}

/** A byte count for people: `512 B`, `1.50 KiB`, `20.0 MiB`, `2.00 GiB`. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes / 1024;
  let index = 0;
  while (value >= 1024 && index < units.length - 1) {
    value /= 1024;
    index++;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[index]}`;
}

/** How long ago, for people: `12 s ago`, `5 min ago`, `3 h ago`, `2 days ago`. */
export function formatAge(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} h ago`;
  const days = Math.round(seconds / 86_400);
  return `${days} day${days === 1 ? "" : "s"} ago`;
}

/** A count with thousands separators, the same whatever the locale: `12,345`. */
export function formatCount(count: number): string {
  return String(Math.round(count)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** A count and what it counts, singular or plural: `1 entry`, `1,500 entries`. */
export function formatQuantity(count: number, singular: string, plural = `${singular}s`): string {
  return `${formatCount(count)} ${count === 1 ? singular : plural}`;
}
