import { delimiter } from "node:path";
import { BaselineError } from "./errors.js";
import { userGitEnvironment } from "./git-env.js";
import { checkGitVersion, GitCommandError, gitText, runGit } from "./git-process.js";

/**
 * The questions this package asks about the user's repository, in its own terms. Each is one git process
 * with the user's environment ({@link userGitEnvironment}); none writes anything (`GIT_OPTIONAL_LOCKS=0`).
 */
export class GitAdapter {
  readonly #cwd: string;
  readonly #signal: AbortSignal | undefined;

  constructor(cwd: string, signal?: AbortSignal) {
    this.#cwd = cwd;
    this.#signal = signal;
  }

  /**
   * Everything about the repository around cwd that the package needs before any work, in one `rev-parse`:
   * where it is, whether it is bare or shallow, and (with `verify`) the commit a revision names.
   * Never throws for a "no": `kind` says what cwd is; `refusal` holds git's message when it refused to
   * look at all (not a repository, dubious ownership). Throws {@link BaselineError} `EGITVERSION` when
   * git is too old to answer, `EGIT` when it cannot run.
   */
  async survey(verify?: string): Promise<RepoSurvey> {
    const args = [
      "rev-parse",
      "--is-bare-repository",
      "--is-inside-git-dir",
      "--is-shallow-repository",
      "--show-object-format",
      "--path-format=absolute",
      "--git-common-dir",
      "--show-toplevel",
    ];
    // `--end-of-options` keeps a base like "--foo" from being read as an option.
    if (verify !== undefined) args.push("--verify", "--quiet", "--end-of-options", `${verify}^{commit}`);
    const result = await runGit(args, { cwd: this.#cwd, env: userGitEnvironment(), signal: this.#signal });
    const lines = result.stdout.toString("utf8").split("\n");
    if (lines.at(-1) === "") lines.pop();
    const [bare, insideGitDir, shallow, objectFormat, commonDir, topLevel, ...rest] = lines;
    if (bare === undefined) return { kind: "refused", refusal: result.stderr.trim() };
    // git older than 2.31 echoes the unknown --path-format option instead of obeying it.
    if (lines.includes("--path-format=absolute")) await requireNewerGit(this.#signal);
    if (bare === "true") return { kind: "bare" };
    if (insideGitDir === "true") return { kind: "git-dir" };
    if (
      shallow === undefined ||
      objectFormat === undefined ||
      commonDir === undefined ||
      topLevel === undefined
    ) {
      return { kind: "refused", refusal: result.stderr.trim() };
    }
    const commit = result.code === 0 && rest.length === 1 && isObjectId(rest[0]) ? rest[0] : undefined;
    return {
      kind: "work-tree",
      topLevel,
      commonDir,
      shallow: shallow === "true",
      objectFormat: objectFormat === "sha256" ? "sha256" : "sha1",
      commit,
    };
  }

  /** The full SHA of the commit `rev` names, or undefined when it names no single commit. */
  async commitOf(rev: string): Promise<string | undefined> {
    const result = await runGit(["rev-parse", "--verify", "--quiet", "--end-of-options", `${rev}^{commit}`], {
      cwd: this.#cwd,
      env: userGitEnvironment(),
      signal: this.#signal,
    });
    const out = result.stdout.toString("utf8").trim();
    // A range ("a..b") prints two lines and fails; only one full object id is a commit.
    return result.code === 0 && isObjectId(out) ? out : undefined;
  }

  /** The best common ancestor of two commits, or undefined when one does not resolve or none exists. */
  async mergeBase(a: string, b: string): Promise<string | undefined> {
    const result = await runGit(["merge-base", "--end-of-options", a, b], {
      cwd: this.#cwd,
      env: userGitEnvironment(),
      signal: this.#signal,
    });
    const out = result.stdout.toString("utf8").trim();
    return result.code === 0 && isObjectId(out) ? out : undefined;
  }

  /**
   * git's own abbreviation of `commit` (`git rev-parse --short`: at least `core.abbrev` or git's automatic
   * length, longer when needed to be unique in this repository). `extraObjectDirs` lend objects the
   * repository lacks (a base fetched into a throwaway repository), so such a commit is abbreviated too.
   * Falls back to the first 7 hex digits when git cannot abbreviate it; rejects only on abort.
   */
  async abbreviate(commit: string, extraObjectDirs: readonly string[] = []): Promise<string> {
    const short = await this.shortName(commit, extraObjectDirs);
    return short !== undefined && commit.startsWith(short) ? short : commit.slice(0, 7);
  }

  /**
   * git's abbreviation (`git rev-parse --short`) of the commit `revision` names, or undefined when it names
   * none here. Rejects only on abort.
   */
  async shortName(revision: string, extraObjectDirs: readonly string[] = []): Promise<string | undefined> {
    const env = userGitEnvironment();
    if (extraObjectDirs.length > 0) env.GIT_ALTERNATE_OBJECT_DIRECTORIES = extraObjectDirs.join(delimiter);
    const result = await runGit(
      ["rev-parse", "--short", "--verify", "--quiet", "--end-of-options", `${revision}^{commit}`],
      { cwd: this.#cwd, env, signal: this.#signal },
    );
    const short = result.stdout.toString("utf8").trim();
    return result.code === 0 && /^[0-9a-f]{4,}$/.test(short) ? short : undefined;
  }

  /** The URL of a configured remote, or undefined when there is no such remote. */
  async remoteUrl(name: string): Promise<string | undefined> {
    return (await this.configValues(`remote.${name}.url`))[0];
  }

  /** Every value of a configuration key, in the order git reads them; [] when unset. */
  async configValues(key: string): Promise<string[]> {
    const result = await runGit(["config", "--get-all", "--end-of-options", key], {
      cwd: this.#cwd,
      env: userGitEnvironment(),
      signal: this.#signal,
    });
    if (result.code !== 0) return [];
    return result.stdout.toString("utf8").split("\n").filter(Boolean);
  }

  /** Runs a git command that must succeed and returns its output; a failure is {@link GitCommandError}. */
  async text(args: readonly string[]): Promise<string> {
    return gitText(args, { cwd: this.#cwd, env: userGitEnvironment(), signal: this.#signal });
  }
}

/** What {@link GitAdapter.survey} found. */
export type RepoSurvey =
  | {
      kind: "work-tree";
      topLevel: string;
      commonDir: string;
      shallow: boolean;
      objectFormat: "sha1" | "sha256";
      /** The commit `verify` named, when it named exactly one. */
      commit: string | undefined;
    }
  | { kind: "bare" }
  | { kind: "git-dir" }
  | { kind: "refused"; refusal: string };

/** A full object id: 40 hex digits (SHA-1) or 64 (SHA-256). */
export function isObjectId(text: string | undefined): text is string {
  return text !== undefined && /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(text);
}

async function requireNewerGit(signal: AbortSignal | undefined): Promise<never> {
  await checkGitVersion(signal);
  throw new BaselineError("EGITVERSION", "git ignored --path-format=absolute; upgrade git to 2.31 or later");
}
