/**
 * THE environment policy for every git process this package starts. Two profiles, because git runs in two
 * roles here:
 *
 * - {@link userGitEnvironment}: git acting on the user's repository or talking to a remote (`rev-parse`,
 *   `merge-base`, `config`, `fetch`). It sees the user's environment, so transport and authentication work
 *   as in the user's shell (`GIT_SSH_COMMAND`, `GIT_SSL_CAINFO`, `GIT_ASKPASS`, proxies, `GIT_CONFIG_*`,
 *   traces), minus the variables that would point git at another repository than the one asked about.
 * - {@link privateGitEnvironment}: git reading objects and writing files in the cache's own git directory
 *   (`ls-tree`, `cat-file`, `checkout-index`). Its output must be the commit's exact bytes whoever runs
 *   it, so no user or system configuration reaches it at all, only the variables that locate programs
 *   and the ones that trace git.
 */

/**
 * Variables that redirect git to another repository, index, object store or part of one. A git hook or an
 * alias sets several of them (`GIT_DIR`, `GIT_INDEX_FILE`, `GIT_PREFIX`), and inherited they would make
 * every answer about the wrong repository. Stripped from both profiles.
 */
const REDIRECTING = new Set([
  "GIT_DIR",
  "GIT_WORK_TREE",
  "GIT_INDEX_FILE",
  "GIT_OBJECT_DIRECTORY",
  "GIT_ALTERNATE_OBJECT_DIRECTORIES",
  "GIT_NAMESPACE",
  "GIT_COMMON_DIR",
  "GIT_PREFIX",
  "GIT_IMPLICIT_WORK_TREE",
  "GIT_INTERNAL_SUPER_PREFIX",
  "GIT_QUARANTINE_PATH",
  "GIT_SHALLOW_FILE",
  "GIT_GRAFT_FILE",
]);

/**
 * Kept on purpose, though they are not transport variables: `GIT_CEILING_DIRECTORIES` and
 * `GIT_DISCOVERY_ACROSS_FILESYSTEM` only limit where git looks for a repository, so honouring them makes
 * `findRepoRoot` agree with `git` in the user's shell; `GIT_EXEC_PATH` says where the user's git keeps its
 * helper programs; `GIT_TRACE*` only add diagnostics. Everything else not listed above is kept too
 * (`GIT_SSH`, `GIT_SSH_COMMAND`, `GIT_SSL_*`, `GIT_ASKPASS`, `GIT_HTTP_*`, `GIT_PROXY_*`, `*_proxy`,
 * `GIT_CONFIG_*`, `GIT_CONFIG_GLOBAL`, `GIT_TERMINAL_PROMPT`).
 */
export function userGitEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!REDIRECTING.has(name.toUpperCase())) env[name] = value;
  }
  // Never wait for a password on the terminal: a library call must fail, not hang. A caller who wants the
  // prompt sets GIT_TERMINAL_PROMPT=1 itself. Helpers (GIT_ASKPASS, credential helpers) still run.
  if (env.GIT_TERMINAL_PROMPT === undefined) env.GIT_TERMINAL_PROMPT = "0";
  // Reading never needs git's optional locks (index refresh), so the user's index is never rewritten.
  env.GIT_OPTIONAL_LOCKS = "0";
  // git's messages are read to tell one failure from another ("dubious ownership", "couldn't find remote
  // ref"), so they must not be translated.
  env.LC_ALL = "C";
  return env;
}

/** The null device git accepts as an empty configuration file (git for Windows maps it to `nul`). */
const NO_CONFIG = "/dev/null";

/**
 * The environment for git running in the cache's own git directory `gitDir` (see `scratch-repo.ts`), with
 * `workTree` as its working tree when it writes files. No configuration file is read (`GIT_CONFIG_GLOBAL`
 * is the null device, `GIT_CONFIG_NOSYSTEM`, no `GIT_CONFIG_*` from the environment, no system
 * attributes), so no `core.autocrlf`, filter driver or `safe.directory` of the user can change a byte.
 * Messages are in English (`LC_ALL=C`) because `checkout.ts` reads them to name the failed file.
 */
export function privateGitEnvironment(gitDir: string, workTree?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    const upper = name.toUpperCase();
    if (!upper.startsWith("GIT_") || upper.startsWith("GIT_TRACE") || upper === "GIT_EXEC_PATH") {
      env[name] = value;
    }
  }
  Object.assign(env, {
    GIT_DIR: gitDir,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: NO_CONFIG,
    GIT_ATTR_NOSYSTEM: "1",
    GIT_NO_REPLACE_OBJECTS: "1",
    GIT_OPTIONAL_LOCKS: "0",
    GIT_TERMINAL_PROMPT: "0",
    LC_ALL: "C",
  });
  if (workTree !== undefined) env.GIT_WORK_TREE = workTree;
  return env;
}
