interface Flight<T> {
  promise: Promise<T>;
  /** The signal of the caller that started the flight, which the work itself runs under. */
  signal: AbortSignal | undefined;
}

/**
 * Concurrent calls for one key within a process share one run of the work: the first caller (the leader)
 * starts it under its own signal, later callers (joiners) wait for it.
 *
 * Whose abort rejects whom:
 * - a caller whose own signal aborts rejects at once with its `signal.reason`, leader or joiner; a joiner's
 *   abort does not touch the shared work;
 * - when the leader's signal aborts, the shared work stops and the leader rejects, but a joiner whose own
 *   signal has not aborted starts over (and becomes a leader itself), whatever the leader's abort reason
 *   (`AbortError`, `TimeoutError` from `AbortSignal.timeout()`, any value passed to `abort()`);
 * - any other failure of the work rejects every caller with that failure.
 */
export class SingleFlight<T> {
  readonly #flights = new Map<string, Flight<T>>();

  /** Runs `work` for `key`, or joins the run in flight for it; see the class comment for aborts. */
  async run(
    key: string,
    signal: AbortSignal | undefined,
    work: (signal?: AbortSignal) => Promise<T>,
  ): Promise<T> {
    for (;;) {
      signal?.throwIfAborted();
      let flight = this.#flights.get(key);
      if (flight === undefined) {
        const started: Flight<T> = {
          signal,
          promise: work(signal).finally(() => {
            if (this.#flights.get(key) === started) this.#flights.delete(key);
          }),
        };
        this.#flights.set(key, started);
        flight = started;
      }
      try {
        return await abortable(flight.promise, signal);
      } catch (error) {
        // The flight's signal aborted. When it is this caller's own, the check at the top of the loop
        // rejects with its reason. When it is the leader's, that is not this caller's failure: the flight is
        // gone (its `finally` ran before this rejection), so this caller starts its own.
        if (flight.signal?.aborted) continue;
        throw error;
      }
    }
  }

  /** Every run in flight, for waiting until none is (never rejects). */
  settled(): Promise<unknown> {
    return Promise.allSettled([...this.#flights.values()].map((flight) => flight.promise));
  }
}

/** `promise`, or a rejection with `signal.reason` as soon as the signal aborts, whichever comes first. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
