// The command-line conventions shared by both CLIs, through a small CLI built on them (test/workers/demo-cli.mjs)
// run as a real process: exit codes, where help and errors go, options before the command, JSON errors,
// signals, a closed stdout and the progress line.
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";

const DEMO = join(import.meta.dirname, "workers", "demo-cli.mjs");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Started {
  child: ChildProcess;
  done: Promise<Run>;
  lines: AsyncIterableIterator<string>;
  /** What the child has written to stderr so far. */
  stderrSoFar: () => string;
}

function start(args: string[]): Started {
  const child = spawn(process.execPath, [DEMO, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (text: string) => {
    stdout += text;
  });
  child.stderr?.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  const done = new Promise<Run>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  return { child, done, lines, stderrSoFar: () => stderr };
}

const run = (args: string[]) => start(args).done;

async function nextLine(lines: AsyncIterableIterator<string>): Promise<string | undefined> {
  return (await lines.next()).value as string | undefined;
}

describe("exit codes and where text goes", () => {
  it("treats no command as a usage error: help on stderr, exit 2, nothing on stdout", async () => {
    const { code, stdout, stderr } = await run([]);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain("demo: a command is needed");
    expect(stderr).toContain("Usage: demo <command> [options]");
  });

  it("prints help on stdout with exit 0 for --help, help, and help <command>", async () => {
    for (const args of [["--help"], ["help"], ["-h"]]) {
      const { code, stdout } = await run(args);
      expect(code, args.join(" ")).toBe(0);
      expect(stdout, args.join(" ")).toContain("Commands:\n  count");
    }
    const topic = await run(["help", "count"]);
    expect(topic.code).toBe(0);
    expect(topic.stdout).toMatch(/^Usage: demo count --to N\n/);
    expect(topic.stdout).toContain("--to N");
    expect((await run(["count", "--help"])).stdout).toBe(topic.stdout);
    expect((await run(["help", "nope"])).code).toBe(2);
  });

  it("prints the version with -V and --version, exit 0", async () => {
    for (const flag of ["-V", "--version"]) {
      expect(await run([flag])).toEqual({ code: 0, stdout: "1.2.3\n", stderr: "" });
    }
  });

  it("exits 2 for an unknown option or command, with the usage and where help is on stderr", async () => {
    const option = await run(["count", "--bogus"]);
    expect(option.code).toBe(2);
    expect(option.stdout).toBe("");
    expect(option.stderr).toBe(
      "demo: Unknown option '--bogus'\nusage: demo count --to N\nrun 'demo help count' for more\n",
    );
    const command = await run(["nope"]);
    expect(command.code).toBe(2);
    expect(command.stderr).toBe(
      `demo: unknown command "nope"\nusage: demo <command> [options]\nrun 'demo help' for more\n`,
    );
    const json = await run(["count", "--bogus", "--json"]);
    expect(json.stderr).toBe("");
    expect(JSON.parse(json.stdout).error).toEqual({ code: "EUSAGE", message: "Unknown option '--bogus'" });
  });

  it("exits 2 for an option value it cannot read, naming the option, with the usage of the command", async () => {
    const { code, stderr } = await run(["wait", "--for", "600"]);
    expect(code).toBe(2);
    expect(stderr).toContain('demo: --for: invalid duration "600" (a unit is required');
    expect(stderr).toContain("\nusage: demo wait [--for DURATION]\nrun 'demo help wait' for more\n");
  });

  it("accepts global options before the command", async () => {
    const { code, stdout } = await run(["--cache-dir", "/c", "--json", "count", "--to", "1"]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ version: 1, lines: ["line 0"], cacheDir: "/c" });
  });

  it("prints notes on stderr, but neither under --quiet nor under --json", async () => {
    expect(await run(["count", "--to", "1"])).toEqual({
      code: 0,
      stdout: "line 0\n",
      stderr: "demo: counted 1\n",
    });
    expect((await run(["count", "--to", "1", "-q"])).stderr).toBe("");
    const json = await run(["count", "--to", "1", "--json"]);
    expect(json.stderr).toBe("");
    expect(JSON.parse(json.stdout)).toMatchObject({ version: 1, lines: ["line 0"] });
  });

  it("reports a failure with its code and cause chain, exit 1", async () => {
    const { code, stdout, stderr } = await run(["fail"]);
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr).toBe("demo: cannot write /x: disk full; free space\n  caused by: write ENOSPC\n");
  });

  it("drops the library's prefix from a message and its causes, keeping the whole chain", async () => {
    const { code, stderr } = await run(["fail-deep"]);
    expect(code).toBe(1);
    expect(stderr).toBe("demo: it broke\n  caused by: the disk said no\n  caused by: EIO\n");
    const json = await run(["fail-deep", "--json"]);
    expect(JSON.parse(json.stdout).error).toEqual({ code: "EDEEP", message: "it broke" });
  });

  it("exits with the code a command returns, after its result", async () => {
    expect(await run(["problems"])).toEqual({ code: 1, stdout: "bad one\n", stderr: "" });
    const json = await run(["problems", "--json"]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({ version: 1, bad: 1 });
  });

  it("wraps help at 100 columns", async () => {
    const { stdout } = await run(["help"]);
    for (const line of stdout.split("\n")) expect(line.length, line).toBeLessThanOrEqual(100);
  });

  it("prints errors as JSON on stdout under --json, with the usual exit code", async () => {
    const failure = await run(["fail", "--json"]);
    expect(failure.code).toBe(1);
    expect(JSON.parse(failure.stdout)).toEqual({
      version: 1,
      error: { code: "ENOSPC", message: "cannot write /x: disk full; free space", path: "/x" },
    });
    const usage = await run(["--json", "count", "--bogus"]);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stdout).error.code).toBe("EUSAGE");
  });
});

describe("signals and pipes", () => {
  for (const [signal, exit] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    it(`aborts the command's signal on ${signal}, clears the progress line and exits ${exit}`, async () => {
      const { child, done, lines, stderrSoFar } = start(["wait", "--progress"]);
      expect(await nextLine(lines)).toBe("ready");
      // The progress line is drawn after half a second: wait until it is, so that its clearing is proven.
      while (!stderrSoFar().includes("waiting"))
        await new Promise((resolve) => child.stderr?.once("data", resolve));
      child.kill(signal);
      const { code, stderr } = await done;
      expect(code).toBe(exit);
      expect(stderr).toContain("\rdemo: waiting\u001b[K");
      expect(stderr.endsWith(`aborted\n\r\u001b[Kdemo: interrupted by ${signal}\n`)).toBe(true);
    });
  }

  it("exits at once on a second SIGINT when the first is ignored", async () => {
    const { child, done, lines } = start(["stubborn"]);
    expect(await nextLine(lines)).toBe("ready");
    child.kill("SIGINT");
    expect(await nextLine(lines)).toBe("noticed");
    child.kill("SIGINT");
    expect((await done).code).toBe(130);
  });

  it("exits 141 without a word when stdout is closed early", async () => {
    const { child, done, lines } = start(["count", "--to", "200000"]);
    expect(await nextLine(lines)).toBe("line 0");
    child.stdout?.destroy();
    const { code, stderr } = await done;
    expect(code).toBe(141);
    expect(stderr).toBe("");
  });

  it("draws no progress line when stderr is not a terminal, unless forced", async () => {
    const { child, done, lines } = start(["wait", "--for", "700ms"]);
    expect(await nextLine(lines)).toBe("ready");
    const { code, stderr } = await done;
    expect(child.exitCode).toBe(0);
    expect(code).toBe(0);
    expect(stderr).toBe("");
  });
});
