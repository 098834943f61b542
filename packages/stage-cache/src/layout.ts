import { randomBytes } from "node:crypto";
import { join } from "node:path";

/** The file whose presence inside a slot marks it complete. It is written inside the staging dir as the
 * last step of a build, so the rename that publishes a slot publishes its sentinel in the same step. */
export const STAGE_COMPLETE_SENTINEL = ".cas-stage-complete";

/**
 * An evictor renames an entry's sentinel to this name to claim the entry before removing it: from then on the
 * entry looks incomplete to every new caller, while each of its files stays in place for callers that already
 * hold its path. See `Evictor` for the whole protocol.
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

/** Whether a directory entry directly under the root can be a fan-out directory (`fp[0:2]`). */
export function isFanOutName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]?$/.test(name);
}

/**
 * Every path of a cache root, in one place.
 *
 * ```
 * <root>/<fp[0:2]>/<fp>/                    a slot; complete exactly when it holds .cas-stage-complete,
 *                                           whose mtime is the entry's last use (every hit touches it)
 * <root>/.staging/<fp>.tmp.XXXXXX/          cas.stage temp dirs (debris when their process died)
 * <root>/.scratch/XXXXXX/                   per-process copies of unfingerprinted sources
 * <root>/.trash/<fp>.<time36>.<random>/     entries on their way out (renamed here in one step, then removed)
 * ```
 *
 * The private directories start with a dot, and neither a fan-out name nor a fingerprint can, so no temp,
 * scratch or trash name can ever be taken for a slot, even a fingerprint shaped like `x.tmp.ABCDEF`.
 * Temps live in `.staging` rather than next to the slot for the same reason.
 */
export class Layout {
  readonly root: string;
  readonly stagingDir: string;
  readonly scratchDir: string;
  readonly trashDir: string;

  constructor(root: string) {
    this.root = root;
    this.stagingDir = join(root, ".staging");
    this.scratchDir = join(root, ".scratch");
    this.trashDir = join(root, ".trash");
  }

  fanOutPath(fingerprint: string): string {
    return join(this.root, fingerprint.slice(0, 2));
  }

  slotPath(fingerprint: string): string {
    return join(this.root, fingerprint.slice(0, 2), fingerprint);
  }

  sentinelPath(fingerprint: string): string {
    return join(this.slotPath(fingerprint), STAGE_COMPLETE_SENTINEL);
  }

  claimPath(fingerprint: string): string {
    return join(this.slotPath(fingerprint), EVICTION_CLAIM);
  }

  /** A fresh trash name for `fingerprint`; the creation time in it lets open() tell abandoned trash. */
  trashPath(fingerprint: string): string {
    const random = randomBytes(6).toString("hex");
    return join(this.trashDir, `${fingerprint}.${Date.now().toString(36)}.${random}`);
  }
}

/** When a trash name was made (ms since the epoch), or undefined for a name this package did not make. */
export function trashCreatedAt(name: string): number | undefined {
  const match = /\.([0-9a-z]+)\.[0-9a-f]{12}$/.exec(name);
  if (!match?.[1]) return undefined;
  const time = Number.parseInt(match[1], 36);
  return Number.isFinite(time) ? time : undefined;
}
