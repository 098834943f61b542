// A small CLI built with @cas-stage/cas/cli, for the tests of the shared command-line conventions.
//   node demo-cli.mjs <command> [options]
// `count --to N` prints N numbered lines; `wait` prints "ready", then waits for its signal to abort and
// reports "aborted" on stderr before failing with the abort (drawing a progress line meanwhile); `stubborn`
// prints "ready", then "noticed" on its abort, which it ignores; `fail` throws an error with a code and a cause;
// `fail-deep` throws one whose message and cause carry the library prefix `demo-lib: `; `problems` prints a
// result and exits 1.
import { setTimeout as sleep } from "node:timers/promises";
import { EXIT, optionValue, parseDuration, runCli } from "../../dist/cli/index.js";
import { CasError } from "../../dist/index.js";

await runCli(
  {
    name: "demo",
    version: () => "1.2.3",
    summary: "A demo of the shared conventions.",
    messagePrefix: "demo-lib: ",
    globalOptions: { "cache-dir": { type: "string", value: "DIR", description: "a global option" } },
    commands: {
      count: {
        usage: "count --to N",
        summary: "print numbered lines",
        options: { to: { type: "string", value: "N", description: "how many" } },
        run: async ({ values, out }) => {
          const lines = Array.from({ length: Number(values.to ?? 3) }, (_, i) => `line ${i}`);
          out.result(lines, { lines, cacheDir: values["cache-dir"] ?? null });
          out.note(`counted ${lines.length}`);
        },
      },
      wait: {
        usage: "wait [--for DURATION]",
        summary: "wait until interrupted",
        options: { for: { type: "string", value: "DURATION", description: "give up after" } },
        run: async ({ values, signal, out }) => {
          const ticker = setInterval(() => out.progress.update("waiting"), 20);
          process.stdout.write("ready\n");
          try {
            await sleep(optionValue(values, "for", parseDuration) ?? 60_000, undefined, { signal });
          } finally {
            clearInterval(ticker);
            if (signal.aborted) process.stderr.write("aborted\n");
          }
        },
      },
      stubborn: {
        usage: "stubborn",
        summary: "ignore the first interruption",
        run: async ({ signal }) => {
          signal.addEventListener("abort", () => process.stdout.write("noticed\n"));
          process.stdout.write("ready\n");
          await sleep(60_000);
        },
      },
      "fail-deep": {
        usage: "fail-deep",
        summary: "fail with an error of the library, prefixed",
        run: async () => {
          throw new CasError("EDEEP", "demo-lib: it broke", {
            cause: new CasError("EDEEPER", "demo-lib: the disk said no", { cause: new Error("EIO") }),
          });
        },
      },
      problems: {
        usage: "problems",
        summary: "print a result and exit 1, as a check that found problems does",
        run: async ({ out }) => {
          out.result(["bad one"], { bad: 1 });
          return EXIT.failure;
        },
      },
      fail: {
        usage: "fail",
        summary: "fail with a coded error",
        run: async () => {
          throw new CasError("ENOSPC", "cannot write /x: disk full; free space", {
            path: "/x",
            cause: new Error("write ENOSPC"),
          });
        },
      },
    },
  },
  process.argv.slice(2),
);
