/** Which step of {@link stage} failed: creating the temp dir, or renaming it into its slot. */
export type StagePhase = "tmp" | "finalize";

/**
 * A failure of the staging machinery itself (never of the caller's `build` or `adopt`, whose errors
 * propagate unwrapped).
 *
 * - `phase: "tmp"`: the temp dir could not be created inside `parent` (a missing parent gives `code:
 *   "ENOENT"`). Nothing was written.
 * - `phase: "finalize"`: the rename into the slot failed and `adopt()` did not recognise a finished peer.
 *   The temp dir has been removed; the slot is untouched.
 *
 * `message` is `"<prefix>: <cause message>"`, `cause` is the original error, and `code` is copied from it
 * (for example `ENOENT`, `ENOTEMPTY`, `EXDEV`) so callers can branch on it.
 */
export class StageError extends Error {
  readonly phase: StagePhase;
  readonly code?: string;

  constructor(phase: StagePhase, prefix: string, cause: unknown) {
    super(`${prefix}: ${messageOf(cause)}`, { cause });
    this.name = "StageError";
    this.phase = phase;
    const code = (cause as { code?: unknown } | null)?.code;
    if (typeof code === "string") this.code = code;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
