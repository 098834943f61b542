// The abort rules of calls that share one run of work (fingerprinted stages and scratch copies both use it).
import { describe, expect, it } from "vitest";
import { SingleFlight } from "../src/single-flight.js";

/** Work that runs until told to finish, or until its signal aborts (then it rejects with the reason). */
function controllableWork() {
  const runs: { signal: AbortSignal | undefined; finish: (value: string) => void }[] = [];
  const work = (signal?: AbortSignal) =>
    new Promise<string>((resolve, reject) => {
      runs.push({ signal, finish: resolve });
      signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  return { runs, work };
}

describe("SingleFlight", () => {
  it("runs the work once for concurrent callers", async () => {
    const flights = new SingleFlight<string>();
    const { runs, work } = controllableWork();
    const calls = [flights.run("k", undefined, work), flights.run("k", undefined, work)];
    expect(runs).toHaveLength(1);
    runs[0]?.finish("done");
    expect(await Promise.all(calls)).toEqual(["done", "done"]);
  });

  for (const reason of [
    new DOMException("t", "TimeoutError"),
    new DOMException("a", "AbortError"),
    new Error("x"),
    "a string",
  ]) {
    it(`starts a joiner's own run when the leader's signal aborts, whatever the reason (${String(reason)})`, async () => {
      const flights = new SingleFlight<string>();
      const { runs, work } = controllableWork();
      const controller = new AbortController();
      const leader = flights.run("k", controller.signal, work);
      const joiner = flights.run("k", undefined, work);
      controller.abort(reason);
      await expect(leader).rejects.toBe(reason);
      // The joiner started a run of its own, without the leader's signal.
      await new Promise((resolve) => setImmediate(resolve));
      expect(runs).toHaveLength(2);
      expect(runs[1]?.signal).toBeUndefined();
      runs[1]?.finish("mine");
      expect(await joiner).toBe("mine");
    });
  }

  it("rejects a joiner whose own signal aborts, with its reason, and leaves the leader's run alone", async () => {
    const flights = new SingleFlight<string>();
    const { runs, work } = controllableWork();
    const controller = new AbortController();
    const leader = flights.run("k", undefined, work);
    const joiner = flights.run("k", controller.signal, work);
    const reason = new DOMException("t", "TimeoutError");
    controller.abort(reason);
    await expect(joiner).rejects.toBe(reason);
    runs[0]?.finish("done");
    expect(await leader).toBe("done");
    expect(runs).toHaveLength(1);
  });

  it("rejects every caller with a failure of the work that is no abort", async () => {
    const flights = new SingleFlight<string>();
    const failure = new Error("EACCES");
    const work = () => Promise.reject(failure);
    const calls = [flights.run("k", new AbortController().signal, work), flights.run("k", undefined, work)];
    for (const call of calls) await expect(call).rejects.toBe(failure);
  });
});
