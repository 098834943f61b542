import { GitError, type SimpleGit, simpleGit } from "simple-git";

/**
 * The one place that talks to simple-git. Everything else in the package asks these questions in its own
 * terms and never sees simple-git's types.
 *
 * Blob and tree contents are not read here: simple-git decodes output as UTF-8 and has no streaming, so
 * cat-file.ts spawns `git cat-file --batch` itself.
 */
export class GitAdapter {
  readonly #git: SimpleGit;
  readonly #signal: AbortSignal | undefined;

  constructor(cwd: string, signal?: AbortSignal) {
    this.#signal = signal;
    this.#git = simpleGit({
      baseDir: cwd,
      // Under load the default completion can resolve before all output arrived.
      completion: { onClose: true, onExit: false },
      ...(signal ? { abort: signal } : {}),
    });
  }

  /**
   * Facts about the working tree that contains cwd, in one process. Throws {@link GitCommandError} when
   * cwd is not inside a working tree (outside any repository, inside `.git`, or in a bare repository).
   */
  async workingTree(): Promise<{ topLevel: string; commonDir: string; shallow: boolean }> {
    const out = await this.#run([
      "rev-parse",
      "--is-shallow-repository",
      "--path-format=absolute",
      "--git-common-dir",
      "--show-toplevel",
    ]);
    const [shallow, commonDir, topLevel] = out.split("\n");
    if (!commonDir || !topLevel) throw new GitCommandError("git rev-parse printed no working tree", "");
    return { topLevel, commonDir, shallow: shallow === "true" };
  }

  /** Whether cwd is inside a repository at all, and whether it is inside its git directory. */
  async location(): Promise<"git-dir" | "bare" | "work-tree" | "none"> {
    const out = await this.#tryRun(["rev-parse", "--is-inside-git-dir", "--is-bare-repository"]);
    if (out === undefined) return "none";
    const [insideGitDir, bare] = out.split("\n");
    if (insideGitDir === "true") return "git-dir";
    return bare === "true" ? "bare" : "work-tree";
  }

  /** The full SHA of the commit `rev` names, or undefined when it names no commit. */
  async commitOf(rev: string): Promise<string | undefined> {
    // `--end-of-options` keeps a base like "--foo" from being read as an option.
    const out = await this.#tryRun([
      "rev-parse",
      "--verify",
      "--quiet",
      "--end-of-options",
      `${rev}^{commit}`,
    ]);
    return out || undefined;
  }

  /** The best common ancestor of two commits, or undefined when one does not resolve or none exists. */
  async mergeBase(a: string, b: string): Promise<string | undefined> {
    const out = await this.#tryRun(["merge-base", "--end-of-options", a, b]);
    return out || undefined;
  }

  /** The URL of a configured remote, or undefined when there is no such remote. */
  async remoteUrl(name: string): Promise<string | undefined> {
    const out = await this.#tryRun(["config", "--get", `remote.${name}.url`]);
    return out || undefined;
  }

  /** `git init --bare` of cwd (which must exist). */
  async initBare(): Promise<void> {
    await this.#run(["init", "--bare", "--quiet"]);
  }

  /**
   * Fetches one revision from `url` into the repository at cwd, only its tip (depth 1: only the tree is
   * needed), without tags, and returns the fetched commit. Throws {@link GitCommandError} on failure.
   */
  async fetchCommit(url: string, rev: string): Promise<string> {
    await this.#run(["fetch", "--quiet", "--no-tags", "--depth=1", "--end-of-options", url, rev]);
    const commit = await this.commitOf("FETCH_HEAD");
    if (!commit) throw new GitCommandError(`git fetch of ${rev} produced no commit`, "");
    return commit;
  }

  async #run(args: string[]): Promise<string> {
    try {
      return (await this.#git.raw(args)).trim();
    } catch (error) {
      this.#signal?.throwIfAborted();
      if (error instanceof GitError) throw new GitCommandError(`git ${args.join(" ")} failed`, error.message);
      throw error;
    }
  }

  /** Like #run, but a non-zero exit gives undefined (the question's answer is "no"). */
  async #tryRun(args: string[]): Promise<string | undefined> {
    try {
      return await this.#run(args);
    } catch (error) {
      if (error instanceof GitCommandError) return undefined;
      throw error;
    }
  }
}

/** A git command that exited non-zero; `stderr` is git's own explanation. */
export class GitCommandError extends Error {
  readonly stderr: string;

  constructor(what: string, stderr: string) {
    const detail = stderr.trim();
    super(detail ? `${what}: ${detail}` : what);
    this.name = "GitCommandError";
    this.stderr = detail;
  }
}
