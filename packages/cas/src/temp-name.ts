import { basename } from "node:path";

/**
 * `mkdtemp` appends six characters from [A-Za-z0-9]; a temp dir is `<basename(final)>.tmp.<six>`.
 * Only names of exactly this form are ever swept as debris.
 */
const TEMP_NAME = /^.+\.tmp\.[A-Za-z0-9]{6}$/;

/** The prefix handed to `mkdtemp` for a slot: `<basename(final)>.tmp.` */
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
