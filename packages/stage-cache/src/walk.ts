import type { Stats } from "node:fs";
import { closeSync } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { type BytePath, bytePathOfText, displayPath, joinPath, ROOT_REL } from "./byte-path.js";
import { codeOf, messageOf, StageCacheError } from "./errors.js";
import { sourceError } from "./fs-errors.js";
import { type ListedEntry, type Lookup, type TreeDir, type TreeReader, treeReader } from "./tree-reader.js";

/** A regular file that a stage holds, opened by the walk. */
export class TreeFile {
  readonly #where: BytePath;
  readonly #name: BytePath | undefined;

  constructor(
    /** Path inside the tree: `/`-separated, never empty. Not necessarily UTF-8. */
    readonly rel: BytePath,
    /**
     * A read-only descriptor of exactly the file the rules accepted (for a symlink, of its target). Its
     * content is read from here and nowhere else. The walk closes it once the visitor calls `done`.
     */
    readonly fd: number,
    /** `fstat` of `fd`: permission bits, size, allocated blocks. */
    readonly stats: Stats,
    /** Its absolute path, or (with `name`) that of the directory holding it. */
    where: BytePath,
    name?: BytePath,
  ) {
    this.#where = where;
    this.#name = name;
  }

  /** Where the file lies: its absolute path, or the resolved target of a symlink. Made when asked. */
  get path(): BytePath {
    return this.#name === undefined ? this.#where : joinPath(this.#where, this.#name);
  }

  /** {@link path} for messages. */
  get display(): string {
    return displayPath(this.path);
  }
}

/** What the walk reports, in discovery order (a directory always before anything inside it). */
export interface TreeVisitor {
  /** A directory inside the tree (never the root itself). Synchronous, so it runs before its contents. */
  dir?: (rel: BytePath, path: BytePath) => void;
  /**
   * A file. Starts work on it and calls `done` exactly once, with an error on failure; may call it before
   * returning. The walk keeps at most `concurrency` files unfinished. Node-style callbacks rather than
   * promises: for ten thousand small files the promise machinery costs more than the work.
   */
  file: (file: TreeFile, done: (error?: unknown) => void) => void;
  /** What the visitor does with files, for messages: "copy" gives "cannot copy <path>: …". */
  action: string;
  /**
   * Called while the walk waits for unfinished files: the visitor may finish some of that work itself
   * (a copy takes back jobs from its workers), and returns whether it did; the walk then looks again.
   */
  idle?: () => boolean;
}

/**
 * The moments a test can act in: before an entry is opened and right after; between a followed symlink's
 * resolution and the opening of its target, and right after that.
 */
export type OpenStep = "entry" | "entry-opened" | "link-target" | "link-target-opened";

export interface WalkOptions {
  /** Keep symlinks whose target resolves outside the source root instead of skipping them. */
  followExternalSymlinks?: boolean;
  /** Told about every symlink to a file skipped because its target is outside the root. */
  onWarning?: (message: string, path: string) => void;
  signal?: AbortSignal;
  /** How many files may be unfinished at once. Default 512. */
  concurrency?: number;
  /**
   * Test hook, not part of the package's API: runs at each {@link OpenStep} with the entry's absolute path
   * (the link's, for a symlink), so a test can swap the entry at exactly that moment.
   */
  onStep?: (path: string, step: OpenStep) => void;
  /** Test hook, not part of the package's API: force a lookup strategy (default: the platform's best). */
  lookup?: Lookup;
}

/** The walk lists and opens synchronously (much cheaper per entry than a thread-pool round trip) but
 * gives the event loop a turn this often, so completions are handled and the process stays responsive. */
const SLICE_MS = 8;

/**
 * Walks what a stage of `source` holds and reports it to `visit`. THE rules, in one place, shared by the
 * copy and the fingerprint so the two cannot disagree:
 *
 * - directories are descended, except every dot-directory (`.git`, `.cache`, …) and every `node_modules`;
 * - regular files are kept, dotfiles included;
 * - a symlink is kept (as the file it points to) only when it resolves to a regular file inside the
 *   source root; one resolving outside is skipped with a warning unless `followExternalSymlinks`;
 *   symlinks to directories and dangling or looping symlinks are skipped silently;
 * - sockets, FIFOs and devices are skipped (and never opened on purpose; one swapped in after the listing
 *   is opened non-blocking, seen for what it is, and skipped).
 *
 * Names are bytes: a name that is not UTF-8 is walked like any other.
 *
 * The decision and the read are one object. The listing only says what an entry was; each is then opened
 * without following symlinks and the rules apply to what the descriptor is (`fstat`): a file swapped for a
 * symlink since the listing is treated as the symlink it now is, a directory swapped for a symlink is not
 * descended. A followed symlink is resolved once, by opening it, and the opened file's own path is what is
 * checked against the root. Visitors read only from the descriptor they are given. Lookups go through the
 * open parent directory (see {@link Lookup}): on Linux no component above an entry is resolved again, so
 * no swap anywhere in the tree can make the walk read outside the root; on other platforms, paths are
 * checked after each lookup and a swap makes the walk fail with `ESOURCECHANGED` (see {@link Lookup} for
 * the microseconds this leaves).
 *
 * Symlinked directories are never descended, so symlink loops cannot make the walk run forever. An entry
 * listed but gone when opened fails the walk with `ENOENT`: the source changed during the walk.
 *
 * The first failure stops the walk; it is thrown once every file started has finished, so nothing is
 * still reading or writing when the caller cleans up. Every descriptor the walk opened is closed by then.
 *
 * Resolves to the source's real path. Throws {@link StageCacheError} `ENOENT` when `source` does not exist,
 * `ENOTDIR` when it is not a directory, `ESOURCECHANGED` as above, the filesystem's code when something
 * inside cannot be listed or opened; whatever a visitor throws; `signal.reason` on abort.
 */
export async function walkTree(
  source: string,
  visit: TreeVisitor,
  options: WalkOptions = {},
): Promise<string> {
  const rootPath = await sourceRoot(source);
  const reader = treeReader(options.lookup);
  let root: TreeDir;
  try {
    root = reader.openRoot(rootPath);
  } catch (cause) {
    throw sourceError("list", bytePathOfText(rootPath), cause);
  }
  try {
    await new Walk(reader, root, visit, options).run();
  } finally {
    reader.close(root);
  }
  return rootPath;
}

/** One walk: the steps, each named after what it decides. */
class Walk {
  readonly #reader: TreeReader;
  readonly #root: TreeDir;
  readonly #rootPrefix: BytePath;
  readonly #visit: TreeVisitor;
  readonly #options: WalkOptions;
  readonly #limit: number;
  #failure: { error: unknown } | undefined;
  #inFlight = 0;
  #wake: (() => void) | undefined;
  #sliceStart = performance.now();

  constructor(reader: TreeReader, root: TreeDir, visit: TreeVisitor, options: WalkOptions) {
    this.#reader = reader;
    this.#root = root;
    this.#rootPrefix = joinPath(root.path, "" as BytePath);
    this.#visit = visit;
    this.#options = options;
    this.#limit = options.concurrency ?? 512;
  }

  /** Walks the whole tree, waits for every file started, then throws the first failure if there was one. */
  async run(): Promise<void> {
    try {
      await this.#directory(this.#root, ROOT_REL);
    } catch (error) {
      this.#failure ??= { error };
    }
    await this.#unfinishedAtMost(0);
    if (this.#failure !== undefined) throw this.#failure.error;
  }

  /** Lists a directory and takes each entry in turn, keeping pace with the event loop and the files started. */
  async #directory(dir: TreeDir, rel: BytePath): Promise<void> {
    for (const entry of this.#list(dir)) {
      // Awaited only when there is something to wait for: a promise per entry costs more than the entry.
      const paced = this.#pace();
      if (paced !== undefined) await paced;
      if (this.#failure !== undefined) return;
      const descended = this.#entry(dir, rel, entry);
      if (descended !== undefined) await descended;
    }
  }

  /**
   * Applies the rules to one listed entry: skip it, or open it and go by what was opened. Returns a promise
   * only when it descends into a directory.
   */
  #entry(dir: TreeDir, parentRel: BytePath, entry: ListedEntry): Promise<void> | undefined {
    const rel = joinPath(parentRel, entry.name);
    if (entry.isSymbolicLink()) {
      this.#symlink(dir, entry.name, rel);
      return undefined;
    }
    const listedAsDir = entry.isDirectory();
    if (listedAsDir ? isSkippedDirectory(entry.name) : !entry.isFile()) return undefined;
    const opened = this.#open(dir, entry.name, listedAsDir);
    switch (opened.kind) {
      case "file":
        this.#file(new TreeFile(rel, opened.fd, opened.stats, dir.path, entry.name));
        return undefined;
      case "dir":
        return this.#subdirectory(opened.dir, entry.name, rel);
      case "symlink":
        // It was something else when listed: the rules apply to what it is now.
        this.#symlink(dir, entry.name, rel);
        return undefined;
      default:
        // A socket, FIFO or device swapped in since the listing: not part of a stage.
        return undefined;
    }
  }

  /** Descends an opened directory unless its name is skipped; releases it either way. */
  async #subdirectory(child: TreeDir, name: BytePath, rel: BytePath): Promise<void> {
    try {
      if (isSkippedDirectory(name)) return;
      this.#visit.dir?.(rel, child.path);
      await this.#directory(child, rel);
    } finally {
      this.#reader.close(child);
    }
  }

  /** Follows a symlink to a regular file inside the root (or anywhere, when asked); skips anything else. */
  #symlink(dir: TreeDir, name: BytePath, rel: BytePath): void {
    const linkPath = joinPath(dir.path, name);
    const onStep = this.#options.onStep;
    const target = this.#reader.openLinkTarget(
      dir,
      name,
      onStep && {
        resolved: () => onStep(displayPath(linkPath), "link-target"),
        opened: () => onStep(displayPath(linkPath), "link-target-opened"),
      },
    );
    if (target === undefined) return;
    if (!this.#options.followExternalSymlinks && !isInside(target.path, this.#rootPrefix)) {
      closeSync(target.fd);
      const shown = displayPath(rel);
      this.#options.onWarning?.(
        `skipped symlink ${shown}: its target ${displayPath(target.path)} is outside the source root`,
        displayPath(linkPath),
      );
      return;
    }
    this.#file(new TreeFile(rel, target.fd, target.stats, target.path));
  }

  /** Hands an opened file to the visitor; its descriptor is closed when the visitor is done with it. */
  #file(file: TreeFile): void {
    this.#inFlight++;
    let finished = false;
    const done = (error?: unknown) => {
      if (finished) return;
      finished = true;
      closeSync(file.fd);
      if (error !== undefined) this.#failure ??= { error };
      this.#inFlight--;
      this.#wake?.();
    };
    try {
      this.#visit.file(file, done);
    } catch (error) {
      done(error);
    }
  }

  #list(dir: TreeDir): ListedEntry[] {
    try {
      return this.#reader.list(dir);
    } catch (cause) {
      throw sourceError("list", dir.path, cause);
    }
  }

  #open(dir: TreeDir, name: BytePath, listedAsDir: boolean) {
    const onStep = this.#options.onStep;
    try {
      if (onStep === undefined) return this.#reader.open(dir, name, listedAsDir);
      const shown = displayPath(joinPath(dir.path, name));
      onStep(shown, "entry");
      return this.#reader.open(dir, name, listedAsDir, () => onStep(shown, "entry-opened"));
    } catch (cause) {
      throw sourceError(this.#visit.action, joinPath(dir.path, name), cause);
    }
  }

  /**
   * Gives the event loop a turn once a slice is used up, bounds the files in flight, honours the signal.
   * Returns a promise only when there is something to wait for.
   */
  #pace(): Promise<void> | undefined {
    this.#options.signal?.throwIfAborted();
    if (this.#inFlight < this.#limit && performance.now() - this.#sliceStart <= SLICE_MS) return undefined;
    return this.#breathe();
  }

  async #breathe(): Promise<void> {
    if (this.#inFlight >= this.#limit) await this.#unfinishedAtMost(this.#limit >> 1);
    await yieldToLoop();
    this.#sliceStart = performance.now();
  }

  async #unfinishedAtMost(count: number): Promise<void> {
    while (this.#inFlight > count) {
      if (this.#visit.idle?.()) continue;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    this.#wake = undefined;
  }
}

/** Dot-directories and `node_modules` are never part of a stage. */
function isSkippedDirectory(name: BytePath): boolean {
  return name.charCodeAt(0) === 0x2e || name === "node_modules";
}

function isInside(path: BytePath, rootPrefix: BytePath): boolean {
  return path.length > rootPrefix.length && path.startsWith(rootPrefix);
}

/** The real path of `source`, checked to be an existing directory. */
export async function sourceRoot(source: string): Promise<string> {
  let stats: Stats;
  try {
    stats = await stat(source);
  } catch (cause) {
    const code = codeOf(cause) ?? "EIO";
    const message =
      code === "ENOENT"
        ? `source directory does not exist: ${source}`
        : `cannot read source ${source}: ${messageOf(cause)}`;
    throw new StageCacheError(code, message, { path: source, cause });
  }
  if (!stats.isDirectory()) {
    throw new StageCacheError("ENOTDIR", `source is not a directory: ${source}`, { path: source });
  }
  return realpath(source);
}
