import type { CopyWorkers } from "./copy-workers.js";

/**
 * The copy-worker pool of this process once it has started (see `CopyWorkers.shared`). Kept apart from
 * `copy-workers.ts` so that a copy can find a running pool without loading the pool's code and
 * `node:worker_threads`, which most copies (those of fewer than `START_WORKERS_AFTER` files) never use.
 */
export const runningPool: { current: CopyWorkers | undefined } = { current: undefined };
