import { access, constants, mkdir } from "node:fs/promises";
import { EntryStore, type EntryStoreHooks } from "@cas-stage/cas/entry-store";
import { CasError, codeOf, messageOf } from "@cas-stage/cas/errors";
import { BaselineError } from "./errors.js";
import { baselinesDir, CLAIM, SENTINEL, stagingDir, trashDir } from "./layout.js";

/** What every cache function passes on to the store. */
export interface StoreOptions {
  /** Receives what the store did on its own (debris removed, an interrupted eviction repaired). */
  onWarning?: ((message: string, path: string) => void) | undefined;
  /** A claim older than this belongs to a dead evictor (default: cas's `CLAIM_GRACE_MS`). */
  claimGraceMs?: number | undefined;
  /** @internal Test seam: stops at the named points of an eviction. */
  hooks?: EntryStoreHooks | undefined;
}

/** The entry store of the baseline cache under `cacheRoot`: the one protocol for hits, builds and eviction. */
export function openStore(cacheRoot: string, options: StoreOptions = {}): EntryStore {
  return new EntryStore({
    stagingDir: stagingDir(cacheRoot),
    trashDir: trashDir(cacheRoot),
    sentinel: SENTINEL,
    claim: CLAIM,
    ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    ...(options.claimGraceMs === undefined ? {} : { claimGraceMs: options.claimGraceMs }),
    ...(options.hooks ? { hooks: options.hooks } : {}),
  });
}

export const WRITABLE_HINT = "pass a writable cache dir or set CAS_STAGE_CACHE_DIR";

/**
 * Makes the cache's directories and checks that new slots can be published there (the rename into
 * `baselines/` needs write permission on it). Throws {@link BaselineError} with the filesystem's code
 * (`EACCES`, `EPERM`, `EROFS`, `ENOTDIR`, `ENOSPC`, …) and a message naming the directory and saying what
 * to do.
 */
export async function prepareStore(store: EntryStore, cacheRoot: string): Promise<void> {
  try {
    await store.prepare();
    await access(baselinesDir(cacheRoot), constants.W_OK);
  } catch (error) {
    throw cacheError(cacheRoot, error);
  }
}

/**
 * Makes the trash directory inside an existing `baselines/` before a slot is moved there: a cache written
 * by 0.1.0 (or whose trash was removed by hand) has none, and the move would fail with ENOENT. Creates
 * nothing when the cache itself is missing (`baselines/` is never made here). Throws the `mkdir` error.
 */
export async function ensureTrash(store: EntryStore): Promise<void> {
  try {
    await mkdir(store.trashDir);
  } catch (error) {
    if (codeOf(error) !== "EEXIST") throw error;
  }
}

/**
 * A failure of the cache machinery as a {@link BaselineError}: the cause's code and path, and for a
 * directory that cannot be written, the hint to use another one. A `BaselineError` is returned as it is.
 */
export function cacheError(cacheRoot: string, error: unknown): BaselineError {
  if (error instanceof BaselineError) return error;
  const code = codeOf(error) ?? "EIO";
  const path = (error instanceof CasError ? error.path : undefined) ?? pathOf(error) ?? cacheRoot;
  const unwritable = ["EACCES", "EPERM", "EROFS", "ENOTDIR", "EEXIST", "ENOSPC", "EDQUOT"].includes(code);
  return new BaselineError(
    code,
    `cannot use the baseline cache in ${cacheRoot}: ${messageOf(error)}${unwritable ? `; ${WRITABLE_HINT}` : ""}`,
    { path, cause: error },
  );
}

function pathOf(error: unknown): string | undefined {
  const path = (error as { path?: unknown } | null)?.path;
  return typeof path === "string" ? path : undefined;
}

/** Filesystem and store failures become a BaselineError; the build's own errors and aborts pass as they are. */
export function storeError(cacheRoot: string, error: unknown): unknown {
  return error instanceof CasError || (codeOf(error)?.startsWith("E") ?? false)
    ? cacheError(cacheRoot, error)
    : error;
}
