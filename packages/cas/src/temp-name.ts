import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { codeOf } from "./errors.js";

/**
 * A temp dir is `<basename(final)>.tmp.<six>`, the six characters from [A-Za-z0-9] as `mkdtemp` makes them.
 * Only names of exactly this form are ever swept as debris. `s`: a slot's name may hold any character but
 * `/`, a newline included.
 */
const TEMP_NAME = /^.+\.tmp\.[A-Za-z0-9]{6}$/s;
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const SUFFIX_LENGTH = 6;
/** 62^6 names: a clash is rare, and a run of them means something else is wrong. */
const MAX_CLASHES = 100;

/** The prefix of the temp dirs of a slot: `<basename(final)>.tmp.` */
export function tempPrefixFor(final: string): string {
  return `${basename(final)}.tmp.`;
}

/**
 * Whether `name` (a bare directory entry name, not a path) has the form of a temp dir made by `stage`.
 * Callers that list a directory of slots use it to tell in-flight or crashed builds from finished slots.
 */
export function isStageTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/**
 * Creates a fresh, empty directory `<parent>/<prefix><six random characters>` and returns its path, as
 * `mkdtemp` does, but with the mode any `mkdir` gets (`0o777` less the umask) instead of `mkdtemp`'s fixed
 * `0o700`: the temp dir becomes a slot by a rename, and a slot of a cache shared by several users (a group
 * directory, a mode-1777 root) must be as readable as the umask says. Throws the `mkdir` error (with its
 * `code`) for anything but a name clash, which is retried with another name.
 */
export async function makeTempDir(parent: string, prefix: string): Promise<string> {
  for (let clashes = 0; ; clashes++) {
    const path = join(parent, prefix + randomSuffix());
    try {
      await mkdir(path);
      return path;
    } catch (error) {
      if (codeOf(error) !== "EEXIST" || clashes >= MAX_CLASHES) throw error;
    }
  }
}

function randomSuffix(): string {
  // 248 = 4 × 62: bytes below it map onto the alphabet without bias; the rare others are drawn again.
  let suffix = "";
  while (suffix.length < SUFFIX_LENGTH) {
    for (const byte of randomBytes(SUFFIX_LENGTH * 2)) {
      if (byte < 248 && suffix.length < SUFFIX_LENGTH) suffix += ALPHABET[byte % 62];
    }
  }
  return suffix;
}
