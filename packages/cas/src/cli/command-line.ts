import { parseArgs } from "node:util";
import { CasError, codeOf, messageOf } from "../errors.js";
import { ProgressLine } from "./progress.js";

/** One option of a command line. */
export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  /** The value's name in help, e.g. `DIR` (string options only). */
  value?: string;
  description: string;
}

export type OptionValues = Record<string, string | boolean | undefined>;

/** What a command's `run` gets. */
export interface CommandContext {
  /** Every option given (the command's and the global ones), by long name. */
  values: OptionValues;
  positionals: string[];
  /** Aborted by the first SIGINT or SIGTERM: pass it to every long operation. */
  signal: AbortSignal;
  out: Output;
}

export interface CommandSpec {
  /** After the tool's name, e.g. `stage <dir> (--fingerprint FP | --auto)`. */
  usage: string;
  /** One line, for the list of commands. */
  summary: string;
  /** Paragraphs of the command's own help. */
  description?: string;
  options?: Record<string, OptionSpec>;
  /** How many positional arguments the command takes: `[min, max]`. Default `[0, 0]`. */
  args?: [number, number];
  examples?: string[];
  /**
   * Does the work; resolves to the exit code when it is not 0 (`EXIT.failure` for problems found, such as a
   * `verify` that found bad entries, after printing its result). A thrown error is reported by `runCli`.
   */
  run: (context: CommandContext) => Promise<void> | Promise<number>;
}

export interface CliSpec {
  name: string;
  /** Read only when `--version` is asked for. */
  version: () => string;
  summary: string;
  commands: Record<string, CommandSpec>;
  /** Run when the command line names no command; without one, that is a usage error. */
  defaultCommand?: string;
  /** Options every command takes, besides the built-in ones (`--json`, `-q`, `--progress`, `-h`, `-V`). */
  globalOptions?: Record<string, OptionSpec>;
  /**
   * What the tool's library puts in front of its error messages (`stage-cache: `): dropped when a message
   * is printed, where the tool's own name stands in front of it.
   */
  messagePrefix?: string;
}

/** The exit codes both CLIs use. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  /** 128 + SIGINT, as a shell reports a process killed by Ctrl-C. */
  interrupted: 130,
  /** 128 + SIGPIPE: the reader of stdout went away (`… | head -1`); nothing is printed. */
  outputClosed: 141,
  /** 128 + SIGTERM. */
  terminated: 143,
} as const;

const BUILT_IN_OPTIONS: Record<string, OptionSpec> = {
  json: { type: "boolean", description: "print the result (or the error) as one JSON document on stdout" },
  quiet: { type: "boolean", short: "q", description: "print only the result: no notes, no progress" },
  progress: {
    type: "boolean",
    description: "force the progress line on stderr even when it is not a terminal",
  },
  "no-progress": {
    type: "boolean",
    description: "never draw a progress line (default off unless a terminal)",
  },
  help: { type: "boolean", short: "h", description: "show help (also: help <command>)" },
  version: { type: "boolean", short: "V", description: "print the version and exit" },
};

/**
 * A mistake in the command line itself: exit code 2; on stderr the reason, then the usage of the command
 * (`topic`, by default the command that ran; "" for the tool) and where its help is.
 */
export class UsageError extends CasError {
  topic: string | undefined;

  constructor(message: string, topic?: string) {
    super("EUSAGE", message);
    this.name = "UsageError";
    this.topic = topic;
  }
}

/**
 * Where a command's output goes, honouring `--json` and `--quiet`: the result on stdout (human text or one
 * JSON document, never both), notes and warnings on stderr.
 */
export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly progress: ProgressLine;
  readonly #name: string;
  /** Writes to stdout not yet taken by the reader; stderr text waits for them (see {@link stderr}). */
  #stdoutPending = 0;
  #heldStderr: string[] = [];

  constructor(name: string, values: OptionValues) {
    this.#name = name;
    this.json = values.json === true;
    this.quiet = values.quiet === true;
    const drawProgress = values["no-progress"] || this.quiet ? false : values.progress === true || undefined;
    this.progress = new ProgressLine(name, drawProgress);
  }

  /** The command's result: `human` lines, or `json` (with `"version": 1` first) under `--json`. */
  result(human: string | readonly string[], json: object): void {
    this.progress.clear();
    if (this.json) {
      this.#stdout(`${JSON.stringify({ version: 1, ...json }, null, 2)}\n`);
    } else {
      const lines = typeof human === "string" ? [human] : human;
      if (lines.length > 0) this.#stdout(`${lines.join("\n")}\n`);
    }
  }

  #stdout(text: string): void {
    this.#stdoutPending++;
    process.stdout.write(text, (error) => {
      this.#stdoutPending--;
      // After a failed write (the reader went away) runCli exits 141; nothing more is printed.
      if (error || this.#stdoutPending > 0) return;
      for (const held of this.#heldStderr.splice(0)) process.stderr.write(held);
    });
  }

  /**
   * Writes `text` on stderr once stdout has been written: a summary that follows a result is then never
   * printed when the reader of the result has gone (`ls | head -1` exits 141 without a word), and it never
   * overtakes the result on a terminal.
   */
  stderr(text: string): void {
    if (this.#stdoutPending > 0) this.#heldStderr.push(text);
    else process.stderr.write(text);
  }

  /**
   * A note for people on stderr (`<name>: …`), dropped under `--quiet` and under `--json`, whose document
   * carries everything a note says: a script reading the JSON gets nothing else on stderr but warnings.
   */
  note(message: string): void {
    if (this.quiet || this.json) return;
    this.progress.clear();
    this.stderr(`${this.#name}: ${message}\n`);
  }

  /** A warning on stderr, shown even under `--quiet`. The shape of the libraries' `onWarning`. */
  readonly warn = (message: string, path?: string): void => {
    this.progress.clear();
    this.stderr(`${this.#name}: warning: ${message}${path ? ` (${path})` : ""}\n`);
  };
}

/**
 * Runs a CLI: parses `argv` (options may come before or after the command), handles `help`, `--help`,
 * `--version`, signals (the first SIGINT/SIGTERM aborts `signal`, a second exits at once), a closed stdout
 * (exit 141, silently), and errors (a message with its cause chain on stderr, or `{"version":1,"error":{…}}`
 * on stdout under `--json`). Sets `process.exitCode` per {@link EXIT}; never throws.
 */
export async function runCli(spec: CliSpec, argv: readonly string[]): Promise<void> {
  process.stdout.on("error", (error) => {
    if (codeOf(error) === "EPIPE") process.exit(EXIT.outputClosed);
  });
  process.stderr.on("error", () => {});
  const controller = new AbortController();
  const stopSignals = onTerminationSignals(controller);
  let out = new Output(spec.name, peekOutputOptions(argv));
  let running: string | undefined;
  try {
    const parsed = parseCommandLine(spec, argv);
    out = new Output(spec.name, parsed.values);
    running = parsed.name;
    if (parsed.values.version) return void write(process.stdout, `${spec.version()}\n`);
    if (parsed.help !== undefined) return void write(process.stdout, renderHelp(spec, parsed.help));
    if (!parsed.command) throw new UsageError(`a command is needed\n\n${renderHelp(spec, "")}`);
    const code = await parsed.command.run({
      values: parsed.values,
      positionals: parsed.positionals,
      signal: controller.signal,
      out,
    });
    out.progress.clear();
    process.exitCode = code ?? EXIT.ok;
  } catch (error) {
    out.progress.clear();
    if (error instanceof UsageError && error.topic === undefined) error.topic = running;
    process.exitCode = reportError(spec, out, error, controller.signal);
  } finally {
    stopSignals();
  }
}

interface ParsedCommandLine {
  command: CommandSpec | undefined;
  /** The command's name, when there is one. */
  name?: string | undefined;
  /** The help topic asked for ("" for the tool itself), or undefined. */
  help: string | undefined;
  values: OptionValues;
  positionals: string[];
}

function parseCommandLine(spec: CliSpec, argv: readonly string[]): ParsedCommandLine {
  const globals = { ...spec.globalOptions, ...BUILT_IN_OPTIONS };
  // Find the command word: the first positional, knowing which options take a value.
  const everyOption = Object.assign({}, globals, ...Object.values(spec.commands).map((c) => c.options ?? {}));
  const { tokens } = parseArgs({
    args: [...argv],
    options: toParseArgsOptions(everyOption),
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const first = tokens.find((token) => token.kind === "positional");
  let name = first?.value;
  let rest = [...argv];
  if (first && name !== undefined && (name in spec.commands || name === "help")) {
    rest = argv.filter((_, index) => index !== first.index);
  } else {
    name = spec.defaultCommand;
  }
  if (name === "help") {
    const topic = rest.find((arg) => !arg.startsWith("-")) ?? "";
    if (topic && !(topic in spec.commands))
      throw new UsageError(`no help on ${JSON.stringify(topic)}: not a command`, "");
    return { command: undefined, help: topic, values: {}, positionals: [] };
  }
  const command = name === undefined ? undefined : spec.commands[name];
  if (!command) {
    if (argv.some((arg) => arg === "-h" || arg === "--help"))
      return { command: undefined, help: "", values: {}, positionals: [] };
    if (argv.some((arg) => arg === "-V" || arg === "--version"))
      return { command: undefined, help: undefined, values: { version: true }, positionals: [] };
    if (first) throw new UsageError(`unknown command ${JSON.stringify(first.value)}`, "");
    return { command: undefined, help: undefined, values: {}, positionals: [] };
  }
  let parsed: { values: OptionValues; positionals: string[] };
  try {
    parsed = parseArgs({
      args: rest,
      options: toParseArgsOptions({ ...globals, ...command.options }),
      allowPositionals: true,
      strict: true,
    }) as { values: OptionValues; positionals: string[] };
  } catch (error) {
    if (!codeOf(error)?.startsWith("ERR_PARSE_ARGS")) throw error;
    const reason = messageOf(error).replace(/\. To specify a positional argument.*$/s, "");
    throw new UsageError(reason, name);
  }
  const topic = name === spec.defaultCommand && !first ? "" : (name as string);
  if (parsed.values.help) return { command, help: topic, values: parsed.values, positionals: [] };
  if (parsed.values.version) return { command, help: undefined, values: parsed.values, positionals: [] };
  const [min, max] = command.args ?? [0, 0];
  const count = parsed.positionals.length;
  if (count < min || count > max) {
    const what =
      count > max ? `unexpected argument ${JSON.stringify(parsed.positionals[max])}` : "missing argument";
    throw new UsageError(what, name);
  }
  return { command, name, help: undefined, ...parsed };
}

/**
 * The value of option `--<name>` read by `parse` (`parseDuration`, `parseSize`, …), or undefined when it was
 * not given. A value `parse` refuses is a usage error that names the option.
 */
export function optionValue<T>(
  values: OptionValues,
  name: string,
  parse: (text: string) => T,
): T | undefined {
  const text = values[name];
  if (typeof text !== "string") return undefined;
  try {
    return parse(text);
  } catch (error) {
    throw new UsageError(`--${name}: ${messageOf(error)}`);
  }
}

function toParseArgsOptions(options: Record<string, OptionSpec>) {
  const result: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, option] of Object.entries(options)) {
    result[name] = option.short ? { type: option.type, short: option.short } : { type: option.type };
  }
  return result;
}

/** `--json` and `--quiet` as early as possible, so that even a usage error honours them. */
function peekOutputOptions(argv: readonly string[]): OptionValues {
  return { json: argv.includes("--json"), quiet: argv.includes("--quiet") || argv.includes("-q") };
}

/** The help of the tool (`topic` "") or of one command, in the one layout both CLIs share. */
export function renderHelp(spec: CliSpec, topic: string): string {
  const globals = { ...spec.globalOptions, ...BUILT_IN_OPTIONS };
  const sections: string[] = [];
  const command = topic ? spec.commands[topic] : undefined;
  if (command) {
    sections.push(`Usage: ${spec.name} ${command.usage}`, wrap(command.summary));
    for (const paragraph of command.description?.split("\n\n") ?? []) sections.push(wrap(paragraph));
    if (command.options && Object.keys(command.options).length > 0)
      sections.push(`Options:\n${renderOptions(command.options)}`);
    sections.push(`Options of every command:\n${renderOptions(globals)}`);
    if (command.examples?.length)
      sections.push(`Examples:\n${command.examples.map((e) => `  ${e}`).join("\n")}`);
  } else {
    const usage = spec.defaultCommand
      ? `Usage: ${spec.name} [<command>] [options]   (no command: ${spec.defaultCommand})`
      : `Usage: ${spec.name} <command> [options]`;
    sections.push(usage, wrap(spec.summary));
    const names = Object.keys(spec.commands);
    const width = Math.max(...names.map((n) => spec.commands[n]?.usage.split(" ")[0]?.length ?? 0), 4) + 2;
    const list = names.map((n) => `  ${n.padEnd(width)}${wrap(spec.commands[n]?.summary ?? "", width + 2)}`);
    sections.push(`Commands:\n${list.join("\n")}`);
    sections.push(`Options of every command:\n${renderOptions(globals)}`);
    sections.push(`Run '${spec.name} help <command>' for the options of a command.`);
  }
  sections.push(
    wrap(
      `Exit codes: ${EXIT.ok} success; ${EXIT.failure} failure (or problems found); ${EXIT.usage} usage error; ` +
        `${EXIT.interrupted}/${EXIT.terminated} interrupted by SIGINT/SIGTERM; ${EXIT.outputClosed} stdout closed early.`,
    ),
  );
  return `${sections.join("\n\n")}\n`;
}

function renderOptions(options: Record<string, OptionSpec>): string {
  const labels = Object.entries(options).map(([name, option]) => {
    const long = `--${name}${option.type === "string" ? ` ${option.value ?? "VALUE"}` : ""}`;
    return [option.short ? `-${option.short}, ${long}` : `    ${long}`, option.description] as const;
  });
  const width = Math.max(...labels.map(([label]) => label.length)) + 2;
  return labels.map(([label, text]) => `  ${label.padEnd(width)}${wrap(text, width + 2)}`).join("\n");
}

/** Help is wrapped to this many columns, a width every terminal shows whole. */
const HELP_WIDTH = 100;

/**
 * `text` broken at spaces into lines of at most {@link HELP_WIDTH} columns, all but the first indented by
 * `indent` (the first is assumed to start there already). A word longer than a line stays whole.
 */
function wrap(text: string, indent = 0): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/ +/)) {
    if (line && indent + line.length + 1 + word.length > HELP_WIDTH) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  lines.push(line);
  return lines.join(`\n${" ".repeat(indent)}`);
}

/** Prints an error the way both CLIs do and returns the exit code. */
function reportError(spec: CliSpec, out: Output, error: unknown, signal: AbortSignal): number {
  const { name } = spec;
  const textOf = (error: unknown) => {
    const text = messageOf(error);
    const prefix = spec.messagePrefix;
    return prefix && text.startsWith(prefix) ? text.slice(prefix.length) : text;
  };
  const interruptedBy = signal.aborted
    ? (signal.reason as { signal?: string } | undefined)?.signal
    : undefined;
  const code = interruptedBy
    ? interruptedBy === "SIGTERM"
      ? EXIT.terminated
      : EXIT.interrupted
    : error instanceof UsageError
      ? EXIT.usage
      : EXIT.failure;
  const errorCode = interruptedBy ? "EINTERRUPTED" : (codeOf(error) ?? "EFAILED");
  const message = interruptedBy ? `interrupted by ${interruptedBy}` : textOf(error);
  if (out.json) {
    const path = (error as { path?: unknown } | null)?.path;
    const body = { code: errorCode, message, ...(typeof path === "string" ? { path } : {}) };
    write(process.stdout, `${JSON.stringify({ version: 1, error: body }, null, 2)}\n`);
    return code;
  }
  const lines = [`${name}: ${message}`];
  if (!interruptedBy && error instanceof UsageError && error.topic !== undefined) {
    const command = error.topic ? spec.commands[error.topic] : undefined;
    const tool = spec.defaultCommand ? "[<command>] [options]" : "<command> [options]";
    lines.push(`usage: ${name} ${command ? command.usage : tool}`);
    lines.push(`run '${name} help${command ? ` ${error.topic}` : ""}' for more`);
  }
  for (let cause = (error as { cause?: unknown } | null)?.cause; cause; ) {
    const text = textOf(cause);
    if (!message.includes(text)) lines.push(`  caused by: ${text}`);
    cause = (cause as { cause?: unknown }).cause;
  }
  out.stderr(`${lines.join("\n")}\n`);
  return code;
}

/** The first SIGINT/SIGTERM aborts `controller` (reason: an AbortError naming the signal); a second exits. */
function onTerminationSignals(controller: AbortController): () => void {
  const handlers = (["SIGINT", "SIGTERM"] as const).map((name) => {
    const handler = () => {
      if (controller.signal.aborted) process.exit(name === "SIGTERM" ? EXIT.terminated : EXIT.interrupted);
      const reason = Object.assign(new Error(`interrupted by ${name}`), { name: "AbortError", signal: name });
      controller.abort(reason);
    };
    process.on(name, handler);
    return () => process.off(name, handler);
  });
  return () => {
    for (const stop of handlers) stop();
  };
}

function write(stream: NodeJS.WriteStream, text: string): void {
  stream.write(text);
}
