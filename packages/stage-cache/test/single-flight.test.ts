// The abort rules of calls that share one run of work (fingerprinted stages and scratch copies both use it).
import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { abortable, SingleFlight } from "../src/single-flight.js";

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

  it("resolves a caller with a signal with the work's value", async () => {
    const flights = new SingleFlight<string>();
    expect(await flights.run("k", new AbortController().signal, async () => "done")).toBe("done");
  });

  it("settles only once every run in flight has, and never rejects", async () => {
    const flights = new SingleFlight<string>();
    const { runs, work } = controllableWork();
    const failing = flights.run("bad", undefined, () => Promise.reject(new Error("EIO")));
    const pending = flights.run("k", undefined, work);
    let settled = false;
    const waiting = flights.settled().then(() => {
      settled = true;
    });
    await expect(failing).rejects.toThrow("EIO");
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled, "settled while a run is in flight").toBe(false);
    runs[0]?.finish("done");
    await pending;
    await waiting;
    expect(settled).toBe(true);
  });
});

describe("abortable", () => {
  it("rejects at once with the reason of a signal that aborted before the call", async () => {
    const controller = new AbortController();
    controller.abort("early");
    await expect(abortable(new Promise(() => {}), controller.signal)).rejects.toBe("early");
  });

  it("leaves no listener on a long-lived signal once the promise settled, either way", async () => {
    const signal = new AbortController().signal;
    await abortable(Promise.resolve(1), signal);
    await abortable(Promise.reject(new Error("x")), signal).catch(() => {});
    expect(getEventListeners(signal, "abort")).toHaveLength(0);
  });

  it("leaves no listener on a signal that aborted while the promise was pending", async () => {
    const controller = new AbortController();
    const call = abortable(new Promise(() => {}), controller.signal);
    controller.abort("late");
    await expect(call).rejects.toBe("late");
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });
});
