import { randomInt } from "node:crypto";
import { mulberry32 } from "./mulberry32.mjs";

/**
 * Seeded randomness for tests, so that any failure can be replayed: every random choice of a test comes from
 * one {@link Rng} made from one seed, the seed is in the test's name, and `CAS_SEED=<seed>` replays it.
 */

/**
 * The seed of this run: `CAS_SEED` when set (a failure's seed, to replay it), otherwise a fresh one, so that
 * successive runs explore different choices. Put it in the test name (`… (CAS_SEED=${seed})`).
 */
export function seedFromEnv(name = "CAS_SEED"): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return randomInt(2 ** 31);
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be an integer >= 0`);
  return value >>> 0;
}

/** Seeded choices over {@link mulberry32}: the same seed gives the same sequence in every process. */
export class Rng {
  /** A float in [0, 1). */
  readonly next: () => number;

  constructor(seed: number) {
    this.next = mulberry32(seed);
  }

  /** An integer in [0, below). */
  int(below: number): number {
    return Math.floor(this.next() * below);
  }

  /** One element of a non-empty list. */
  pick<T>(list: readonly T[]): T {
    const item = list[this.int(list.length)];
    if (item === undefined && list.length === 0) throw new RangeError("pick from an empty list");
    return item as T;
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** `length` random lowercase hex digits. */
  hex(length: number): string {
    let out = "";
    while (out.length < length) out += this.int(16).toString(16);
    return out;
  }

  /** A shuffled copy of `list` (Fisher–Yates). */
  shuffle<T>(list: readonly T[]): T[] {
    const copy = [...list];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
    }
    return copy;
  }

  /** A seed for a child process, drawn from this generator. */
  fork(): number {
    return this.int(2 ** 31);
  }
}
