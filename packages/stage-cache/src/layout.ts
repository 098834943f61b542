import { join } from "node:path";
import { EntryStore, type EntryStoreOptions } from "@cas-stage/cas/entry-store";

/** The file whose presence inside a slot marks it complete. It is written inside the staging dir as the
 * last step of a build, so the rename that publishes a slot publishes its sentinel in the same step. */
export const STAGE_COMPLETE_SENTINEL = ".cas-stage-complete";

/**
 * An evictor renames an entry's sentinel to this name to claim the entry before removing it: from then on the
 * entry looks incomplete to every new caller, while each of its files stays in place for callers that already
 * hold its path. See `EntryStore.evict` in `@cas-stage/cas` for the whole protocol.
 */
export const EVICTION_CLAIM = ".cas-stage-evicting";

const FINGERPRINT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The rule a fingerprint must follow, quoted by the TypeError that rejects one. */
export const FINGERPRINT_RULE =
  "a fingerprint must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ (1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit)";

/** Whether `fingerprint` is a valid slot key. */
export function isValidFingerprint(fingerprint: string): boolean {
  return FINGERPRINT.test(fingerprint);
}

/** Throws a TypeError stating {@link FINGERPRINT_RULE} unless `fingerprint` is valid. */
export function assertFingerprint(fingerprint: unknown): asserts fingerprint is string {
  if (typeof fingerprint !== "string" || !FINGERPRINT.test(fingerprint)) {
    throw new TypeError(
      `stage-cache: invalid fingerprint ${JSON.stringify(fingerprint)}: ${FINGERPRINT_RULE}`,
    );
  }
}

/**
 * The on-disk name of a fingerprint (or of a prefix of one): each upper-case letter is written as `!` and
 * its lower-case form, as Go's module cache does (`ABc` → `!a!bc`). Names are therefore all lower case, so
 * on a case-insensitive filesystem (the default on macOS and Windows) `ABC` and `abc` still get two
 * different slots, and the mapping can be undone exactly ({@link fingerprintOfName}). Fingerprints without
 * upper-case letters (hex digests, commit SHAs) are their own names. `!` is not allowed in fingerprints, so
 * no escaped name can be mistaken for another fingerprint.
 */
export function nameOf(fingerprint: string): string {
  return fingerprint.replace(/[A-Z]/g, (letter) => `!${letter.toLowerCase()}`);
}

/** The fingerprint an escaped slot name stands for, or undefined when `name` is not one {@link nameOf} makes. */
export function fingerprintOfName(name: string): string | undefined {
  if (!/^(?:[a-z0-9._-]|![a-z])+$/.test(name)) return undefined;
  const fingerprint = name.replace(/!([a-z])/g, (_, letter: string) => letter.toUpperCase());
  return isValidFingerprint(fingerprint) ? fingerprint : undefined;
}

/**
 * The fan-out directory of a fingerprint: the escaped form of its first two characters (`ab12…` → `ab`,
 * `ABC` → `!a!b`), so every slot name starts with its fan-out name and the fan-out is as case-safe as the
 * slot.
 */
export function fanOutNameOf(fingerprint: string): string {
  return nameOf(fingerprint.slice(0, 2));
}

/** A slot directory found under a root, named after the fingerprint it holds. */
export interface SlotName {
  fingerprint: string;
  /**
   * True for a slot of an older version of this package, which used the fingerprint itself as the name,
   * upper-case letters included. Such a slot is never a hit again (its fingerprint now maps to an escaped
   * name) and leaves through eviction like any other entry.
   */
  legacy: boolean;
}

/**
 * What the directory `name` inside the directory `fanOut` (both directly under a root) is: a slot and its
 * fingerprint, or undefined for anything this package did not name (private directories, foreign names).
 */
export function parseSlotName(fanOut: string, name: string): SlotName | undefined {
  const fingerprint = fingerprintOfName(name);
  if (fingerprint !== undefined && fanOutNameOf(fingerprint) === fanOut)
    return { fingerprint, legacy: false };
  // Older versions named slots and fan-outs by the raw fingerprint; only those with an upper-case letter
  // differ from today's names (the others are read above).
  if (/[A-Z]/.test(name) && isValidFingerprint(name) && name.slice(0, 2) === fanOut) {
    return { fingerprint: name, legacy: true };
  }
  return undefined;
}

/** The directories of a root that are not fan-outs; each starts with a dot, which no fan-out name can. */
export const PRIVATE_DIRS = [".staging", ".scratch", ".trash"] as const;

/**
 * Every path of a cache root, in one place.
 *
 * ```
 * <root>/<fan-out>/<name>/                  a slot (name = nameOf(fp), fan-out = fanOutNameOf(fp)); complete
 *                                           exactly when it holds .cas-stage-complete, whose mtime is the
 *                                           entry's last use (every hit touches it)
 * <root>/.staging/<name>.tmp.XXXXXX/        cas.stage temp dirs (debris when their process died)
 * <root>/.scratch/<owner>-XXXXXX/           per-process copies of unfingerprinted sources (see scratch.ts)
 * <root>/.trash/<name>.<time36>.<random>/   entries on their way out (renamed here in one step, then removed)
 * <root>/.slots-scanned                     when open() last looked at every slot of a large root (debris.ts)
 * ```
 *
 * The private directories start with a dot, and neither a fan-out name nor a slot name can, so no temp,
 * scratch or trash name can ever be taken for a slot, even a fingerprint shaped like `x.tmp.ABCDEF`.
 * Temps live in `.staging` rather than next to the slot for the same reason.
 */
export class Layout {
  readonly root: string;
  readonly stagingDir: string;
  readonly scratchDir: string;
  readonly trashDir: string;
  readonly slotScanStamp: string;

  constructor(root: string) {
    this.root = root;
    this.stagingDir = join(root, ".staging");
    this.scratchDir = join(root, ".scratch");
    this.trashDir = join(root, ".trash");
    this.slotScanStamp = join(root, ".slots-scanned");
  }

  slotPath(fingerprint: string): string {
    return join(this.root, fanOutNameOf(fingerprint), nameOf(fingerprint));
  }

  /**
   * The store of this root's entries (cas's `EntryStore` over `.staging` and `.trash`, with this package's
   * sentinel and claim names): the one way every part of the package hits, publishes and evicts entries.
   */
  entryStore(
    options: Omit<EntryStoreOptions, "stagingDir" | "trashDir" | "sentinel" | "claim"> = {},
  ): EntryStore {
    return new EntryStore({
      ...options,
      stagingDir: this.stagingDir,
      trashDir: this.trashDir,
      sentinel: STAGE_COMPLETE_SENTINEL,
      claim: EVICTION_CLAIM,
    });
  }

  /** Where an older version of this package put the slot of `fingerprint`: the raw fingerprint as names. */
  legacySlotPath(fingerprint: string): string {
    return join(this.root, fingerprint.slice(0, 2), fingerprint);
  }
}
