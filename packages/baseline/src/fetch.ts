import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { BaselineError, messageOf } from "./errors.js";
import { userGitEnvironment } from "./git-env.js";
import { GitCommandError, runGit } from "./git-process.js";
import { FETCH_REPO_PREFIX } from "./layout.js";
import { createPrivateRepo } from "./private-repo.js";
import type { RepoLocation } from "./repo.js";

/**
 * Fetching into a repository of the cache's own (never the user's): the base a user names that is not
 * in the repository, and the blobs a partial clone lacks. Both run git with the user's environment
 * (transport and authentication as in the user's shell) and the user's repository configuration read
 * through `include.path` (remotes, `http.extraHeader`, credential helpers, `url.*.insteadOf`), so the
 * fetch behaves like `git fetch` in the user's repository, but every object, ref, log and config write
 * lands in `gitDir`.
 */

/** Where to fetch from, and with which configuration. */
export interface FetchSource {
  /** The user's repository configuration file (`<common dir>/config`). */
  userConfig: string;
  /** A remote name configured there (`origin`), or a URL. */
  remote: string;
  /** The remote's URL, for messages. */
  url: string;
}

/**
 * The configuration of every fetch: the user's repository configuration, and no commit graph (the
 * private repository is thrown away). The flags below add: no tags, no submodules, and no background
 * maintenance (which would run gc).
 */
function fetchConfig(source: FetchSource): string[] {
  return ["-c", `include.path=${source.userConfig}`, "-c", "fetch.writeCommitGraph=false"];
}

const FETCH_FLAGS = ["--no-tags", "--no-auto-maintenance", "--recurse-submodules=no", "--quiet"];

/**
 * Fetches the explicit base `rev` from `remote` into a throwaway repository under the OS temp dir, whose
 * object store borrows the user's through `objects/info/alternates` (so only what is missing is
 * transferred and the user's repository gains nothing). Returns the fetched commit, the throwaway
 * repository's object directory, and `release`, which removes it (never throws).
 *
 * Throws like {@link fetchRevision}; on failure the throwaway repository is already removed.
 */
export async function fetchBase(
  location: RepoLocation,
  remote: { name: string; url: string },
  rev: string,
  signal?: AbortSignal,
): Promise<{ commit: string; objectDir: string; release: () => Promise<void> }> {
  const scratch = await mkdtemp(join(tmpdir(), FETCH_REPO_PREFIX));
  const release = () => rm(scratch, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
  try {
    await createPrivateRepo(scratch, {
      alternates: [join(location.commonDir, "objects")],
      objectFormat: location.objectFormat,
    });
    const commit = await fetchRevision(scratch, remoteOf(location, remote.name, remote.url), rev, signal);
    return { commit, objectDir: join(scratch, "objects"), release };
  } catch (error) {
    await release();
    throw error;
  }
}

/**
 * How to name a remote for a fetch that runs in another directory: by name, so all its settings apply,
 * unless its URL is a relative path, which git would resolve against that other directory.
 */
export function remoteOf(location: RepoLocation, name: string, url: string): FetchSource {
  const userConfig = join(location.commonDir, "config");
  if (url.includes("://") || isAbsolute(url)) return { userConfig, remote: name, url };
  const colon = url.indexOf(":");
  const slash = url.indexOf("/");
  // scp-like "host:path"
  if (colon > 0 && (slash < 0 || colon < slash)) return { userConfig, remote: name, url };
  const absolute = resolve(location.root, url);
  return { userConfig, remote: absolute, url: absolute };
}

/**
 * Fetches `rev` (a branch, tag or commit id) from `source`, only its tip (depth 1: only the tree is
 * needed), into the repository `gitDir`, and returns the fetched commit.
 *
 * This is the one place that uses simple-git (imported only when a fetch happens): its guards against
 * options smuggled in a revision stay on for the arguments, and are relaxed only for what this package
 * passes on purpose (the user's transport variables, the `include.path` of the user's configuration).
 *
 * Throws {@link BaselineError} `EUNKNOWNBASE` when the remote has no such revision, `EFETCH` (with git's
 * message) when the fetch itself fails; `signal.reason` when aborted.
 */
export async function fetchRevision(
  gitDir: string,
  source: FetchSource,
  rev: string,
  signal?: AbortSignal,
): Promise<string> {
  const { GitError, simpleGit } = await loadSimpleGit();
  const env = fetchEnvironment();
  const git = simpleGit({
    baseDir: gitDir,
    // Under load the default completion can resolve before all output arrived.
    completion: { onClose: true, onExit: false },
    allowEnvironment: Object.keys(env),
    unsafe: {
      allowUnsafeInclude: true,
      allowUnsafeSshCommand: true,
      allowUnsafeAskPass: true,
      allowUnsafeGitProxy: true,
      allowUnsafeConfigEnvCount: true,
      allowUnsafeConfigPaths: true,
      allowUnsafeExec: true,
    },
    ...(signal ? { abort: signal } : {}),
  }).env(env);
  try {
    await git.raw([
      ...fetchConfig(source),
      "fetch",
      ...FETCH_FLAGS,
      "--depth=1",
      "--end-of-options",
      source.remote,
      rev,
    ]);
    const head = await git.raw(["rev-parse", "--verify", "--quiet", "FETCH_HEAD^{commit}"]);
    return head.trim();
  } catch (error) {
    signal?.throwIfAborted();
    const stderr = error instanceof GitError ? error.message.trim() : messageOf(error);
    throw new BaselineError(
      isNoSuchRevision(stderr) ? "EUNKNOWNBASE" : "EFETCH",
      `fetching ${rev} from ${describeRemote(source)} failed: ${stderr}`,
      {
        cause: new GitCommandError(
          `git fetch ${source.remote} ${rev} failed`,
          { stderr, code: null },
          { cause: error },
        ),
      },
    );
  }
}

/**
 * Fetches the objects `oids` from `source` into `gitDir` in one `git fetch --stdin`, the way git's own
 * lazy fetch of a partial clone does (no negotiation, so exactly these objects come; `--filter` keeps
 * the remote's blobs of other trees out). Throws {@link BaselineError} `EFETCH` naming how many objects
 * were missing and the remote, with git's message; `signal.reason` when aborted.
 */
export async function fetchObjects(
  gitDir: string,
  source: FetchSource,
  oids: readonly string[],
  signal?: AbortSignal,
): Promise<void> {
  const args = [
    ...fetchConfig(source),
    "-c",
    "fetch.negotiationAlgorithm=noop",
    "fetch",
    ...FETCH_FLAGS,
    "--no-write-fetch-head",
    "--filter=blob:none",
    "--stdin",
    "--end-of-options",
    source.remote,
  ];
  const result = await runGit(args, {
    cwd: gitDir,
    env: { ...fetchEnvironment(), GIT_DIR: gitDir },
    input: `${oids.join("\n")}\n`,
    signal,
  });
  if (result.code === 0) return;
  throw new BaselineError(
    "EFETCH",
    `this partial clone lacks ${oids.length} object${oids.length === 1 ? "" : "s"} of the tree, and fetching them from the remote ${describeRemote(source)} failed: ${result.stderr.trim()}; check the network and credentials, or fetch them yourself (git checkout in the repository does)`,
    { cause: new GitCommandError(`git fetch ${source.remote} --stdin failed`, result) },
  );
}

/** "origin (https://…)", or the URL alone when the remote is given as one. */
function describeRemote(source: FetchSource): string {
  return source.remote === source.url ? source.url : `${source.remote} (${source.url})`;
}

/** What git says when the remote answered but has no such revision. */
function isNoSuchRevision(stderr: string): boolean {
  return /couldn't find remote ref|not our ref|no such remote ref|unadvertised object|invalid refspec/i.test(
    stderr,
  );
}

/**
 * The user's git environment without what a fetch never needs and simple-git would refuse (editors,
 * pagers, diff and template programs).
 */
function fetchEnvironment(): NodeJS.ProcessEnv {
  const env = userGitEnvironment();
  for (const name of Object.keys(env)) {
    if (
      /^(?:EDITOR|VISUAL|PAGER|PREFIX|GIT_EDITOR|GIT_SEQUENCE_EDITOR|GIT_PAGER|GIT_EXTERNAL_DIFF|GIT_TEMPLATE_DIR)$/i.test(
        name,
      )
    ) {
      delete env[name];
    }
  }
  return env;
}

let simpleGitModule: Promise<typeof import("simple-git")> | undefined;

/**
 * Imports simple-git on first use (it costs about 30 ms, which a cache hit must not pay) and keeps its
 * `debug` logging off whatever `DEBUG` says, without changing the user's other namespaces: the library
 * never prints.
 */
function loadSimpleGit(): Promise<typeof import("simple-git")> {
  simpleGitModule ??= import("simple-git").then((module) => {
    silenceSimpleGitDebug();
    return module;
  });
  return simpleGitModule;
}

/** The `debug` namespaces of simple-git and of its dependency that logs. */
const SIMPLE_GIT_NAMESPACES = "-simple-git*,-@kwsites/*";

function silenceSimpleGitDebug(): void {
  const seen = new Set<unknown>();
  try {
    const fromSimpleGit = createRequire(import.meta.resolve("simple-git"));
    const requirers = [fromSimpleGit, createRequire(fromSimpleGit.resolve("@kwsites/file-exists"))];
    for (const requireHere of requirers) {
      // The `debug` instance each of them loads, resolved from its own directory.
      const debug = requireHere("debug") as { disable: () => string; enable: (namespaces: string) => void };
      if (seen.has(debug)) continue;
      seen.add(debug);
      const saved = process.env.DEBUG;
      const current = debug.disable();
      debug.enable(current ? `${current},${SIMPLE_GIT_NAMESPACES}` : "");
      // enable() also writes process.env.DEBUG; the user's environment is theirs.
      if (saved === undefined) delete process.env.DEBUG;
      else process.env.DEBUG = saved;
    }
  } catch {
    // A layout where debug cannot be found is one where these packages do not use it.
  }
}
