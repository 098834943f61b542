import { availableParallelism } from "node:os";
import { BaselineError } from "./errors.js";
import { fetchObjects, remoteOf } from "./fetch.js";
import { GitAdapter } from "./git.js";
import { runGit } from "./git-process.js";
import type { RepoLocation } from "./repo.js";
import type { PartialCloneFetcher } from "./write-tree.js";

/**
 * Partial clones (`git clone --filter=blob:none`) lack most blobs, and git fetches a missing one on
 * demand, one `git fetch` per object, each followed by background maintenance in the user's repository.
 * Here nothing reads the user's repository with a promisor remote configured (the private repository
 * has none), so nothing is fetched on demand; instead, once the tree is listed, the missing blobs are
 * found without fetching and fetched in one batch into the private repository.
 */

/**
 * The {@link PartialCloneFetcher} of a partial clone (see `isPartialClone`): the trees of a treeless
 * clone come in one fetch of the commit's root tree (the remote sends every tree below it, and no blob);
 * the blobs the tree lacks are found without fetching and come in one more. Its steps throw
 * {@link BaselineError} `EFETCH` when a fetch fails or there is no promisor remote to fetch from.
 */
export function partialCloneFetcher(location: RepoLocation, signal?: AbortSignal): PartialCloneFetcher {
  // Looked up while the tree is read; needed only once objects turn out to be missing.
  const remote = promisorRemote(new GitAdapter(location.root, signal));
  remote.catch(() => {});
  const fetchMissing = async (gitDir: string, missing: string[]) => {
    const { name, url } = await remote;
    if (name === undefined || url === undefined) {
      throw new BaselineError(
        "EFETCH",
        `this partial clone lacks ${missing.length} object${missing.length === 1 ? "" : "s"} of the tree and has no promisor remote to fetch them from; run git fetch or git checkout in ${location.root}`,
      );
    }
    // Whatever the fetch did not bring, git reports as an object it cannot read.
    await fetchObjects(gitDir, remoteOf(location, name, url), missing, signal);
  };
  return {
    fetchTrees: async (gitDir, env, commit) => {
      // The commit object names its tree in its first line ("tree <id>"); peeling with rev-parse would
      // need the tree itself.
      const raw = await runGit(["cat-file", "commit", commit], { env, signal });
      const tree = /^tree ([0-9a-f]+)\n/.exec(raw.stdout.toString("latin1"))?.[1];
      if (raw.code !== 0 || tree === undefined || (await missingObjects([tree], env, signal)).length === 0)
        return;
      await fetchMissing(gitDir, [tree]);
    },
    fetchBlobs: async (gitDir, env, blobs) => {
      const missing = await missingObjects(blobs, env, signal);
      if (missing.length > 0) await fetchMissing(gitDir, missing);
    },
  };
}

/** The objects of `oids` that the private repository (with `env`) cannot read, found without fetching. */
async function missingObjects(
  oids: readonly string[],
  env: NodeJS.ProcessEnv,
  signal: AbortSignal | undefined,
): Promise<string[]> {
  // git rescans every pack directory after each object it does not find (tens of microseconds), so a
  // clone that lacks thousands of blobs is probed by one process per core, each given a share.
  const unique = [...new Set(oids)];
  const processes = Math.max(
    1,
    Math.min(availableParallelism(), Math.ceil(unique.length / PROBES_PER_PROCESS)),
  );
  const shares = Array.from({ length: processes }, (_, p) => unique.filter((_, i) => i % processes === p));
  const results = await Promise.all(
    shares.map((share) =>
      runGit(["cat-file", "--batch-check=%(objectname)"], { env, input: `${share.join("\n")}\n`, signal }),
    ),
  );
  const missing: string[] = [];
  for (const result of results) {
    if (result.code !== 0) {
      throw new BaselineError("EGIT", `git cat-file --batch-check failed: ${result.stderr.trim()}`);
    }
    for (const line of result.stdout.toString("latin1").split("\n")) {
      if (line.endsWith(" missing")) missing.push(line.slice(0, line.indexOf(" ")));
    }
  }
  return missing;
}

/** Fewer objects than this per probing process are not worth starting another. */
const PROBES_PER_PROCESS = 1000;

/**
 * The promisor remote and its URL, from one `git config`: `extensions.partialClone` names it (older
 * clones), otherwise the first remote with `remote.<name>.promisor` set.
 */
async function promisorRemote(
  git: GitAdapter,
): Promise<{ name: string | undefined; url: string | undefined }> {
  const lines = await git
    .text(["config", "--get-regexp", "^(extensions\\.partialclone|remote\\..*\\.(promisor|url))$"])
    .catch(() => "");
  const urls = new Map<string, string>();
  let named: string | undefined;
  let promisor: string | undefined;
  for (const line of lines.split("\n")) {
    const space = line.indexOf(" ");
    const key = line.slice(0, space).toLowerCase();
    const value = line.slice(space + 1);
    if (key === "extensions.partialclone") named ??= value;
    const remote = /^remote\.(.+)\.(promisor|url)$/.exec(key);
    if (remote?.[2] === "url" && !urls.has(remote[1] as string)) urls.set(remote[1] as string, value);
    if (remote?.[2] === "promisor" && /^(true|yes|on|1)$/i.test(value)) promisor ??= remote[1];
  }
  const name = named ?? promisor;
  return { name, url: name === undefined ? undefined : urls.get(name) };
}
