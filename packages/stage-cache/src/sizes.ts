const UNITS: Record<string, number> = {
  b: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1000 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1000 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  tb: 1000 ** 4,
};

/**
 * Parses a byte size: plain bytes (`1048576`), binary units (`2GiB`, `512KiB`, and the bare `2G`, `512K`
 * as du reads them) or decimal units (`500MB`, `1GB`); case-insensitive, optional space, decimals allowed.
 * Throws a RangeError naming the accepted forms.
 */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = UNITS[(match?.[2] || "b").toLowerCase()];
  if (!match?.[1] || unit === undefined) {
    throw new RangeError(
      `invalid size ${JSON.stringify(text)}: use bytes or a unit, e.g. 2GiB, 500MB, 1048576`,
    );
  }
  return Math.floor(Number(match[1]) * unit);
}

/** A byte count for people: `512 B`, `1.5 KiB`, `20.0 MiB`, `2.00 GiB`. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let index = 0;
  while (value >= 1024 && index < units.length - 1) {
    value /= 1024;
    index++;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[index]}`;
}

/** Parses a duration: plain milliseconds (`500`) or a number with `ms`, `s`, `m`, `h` or `d`. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i.exec(text.trim());
  const scale = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    (match?.[2] ?? "ms").toLowerCase() as "ms"
  ];
  if (!match?.[1])
    throw new RangeError(`invalid duration ${JSON.stringify(text)}: use e.g. 500ms, 30s, 10m, 2h`);
  return Math.floor(Number(match[1]) * scale);
}
