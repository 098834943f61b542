import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { BaselineError } from "./errors.js";
import { fetchObjects } from "./fetch.js";
import { GitAdapter } from "./git.js";
import { runGit } from "./git-process.js";
import type { RepoLocation } from "./repo.js";
import { remoteOf } from "./resolve.js";
import type { TreeSource } from "./write-tree.js";

/**
 * Partial clones (`git clone --filter=blob:none`) lack most blobs, and git fetches a missing one on
 * demand, one `git fetch` per object, each followed by background maintenance in the user's repository.
 * Here nothing reads the user's repository with a promisor remote configured (the private repository
 * has none), so nothing is fetched on demand; instead, once the tree is listed, the missing blobs are
 * found without fetching and fetched in one batch into the private repository.
 */

/**
 * When any of `objectDirs` belongs to a partial clone (it holds a `.promisor` pack), returns the
 * `completeObjects` step of {@link TreeSource} that fetches what the tree lacks from the promisor remote;
 * otherwise undefined (a missing object is then an error). Throws {@link BaselineError} `EFETCH` when
 * the repository is a partial clone without a usable promisor remote.
 */
export async function partialCloneCompleter(
  location: RepoLocation,
  objectDirs: readonly string[],
  signal?: AbortSignal,
): Promise<TreeSource["completeObjects"]> {
  const partial = await Promise.all(objectDirs.map(hasPromisorPack));
  if (!partial.includes(true)) return undefined;
  const git = new GitAdapter(location.root, signal);
  const name = (await git.configValues("extensions.partialclone"))[0] ?? (await firstPromisorRemote(git));
  const url = name === undefined ? undefined : ((await git.remoteUrl(name)) ?? undefined);
  return async (gitDir, env, blobs) => {
    const missing = await missingBlobs(blobs, env, signal);
    if (missing.length === 0) return;
    if (name === undefined || url === undefined) {
      throw new BaselineError(
        "EFETCH",
        `this partial clone lacks ${missing.length} object${missing.length === 1 ? "" : "s"} of the tree and has no promisor remote to fetch them from; run git fetch or git checkout in ${location.root}`,
      );
    }
    await fetchObjects(gitDir, remoteOf(location, name, url), missing, signal);
    const still = await missingBlobs(missing, env, signal);
    if (still.length > 0) {
      throw new BaselineError(
        "EFETCH",
        `the remote ${name} (${url}) did not send ${still.length} of the ${missing.length} objects this partial clone lacks, e.g. ${still[0]}`,
      );
    }
  };
}

/** The objects of `blobs` that the private repository (with `env`) cannot read, found without fetching. */
async function missingBlobs(
  blobs: readonly string[],
  env: NodeJS.ProcessEnv,
  signal: AbortSignal | undefined,
): Promise<string[]> {
  const oids = new Set(blobs);
  const result = await runGit(["cat-file", "--batch-check=%(objectname)"], {
    env,
    input: `${[...oids].join("\n")}\n`,
    signal,
  });
  if (result.code !== 0) {
    throw new BaselineError("EGIT", `git cat-file --batch-check failed: ${result.stderr.trim()}`);
  }
  const missing: string[] = [];
  for (const line of result.stdout.toString("latin1").split("\n")) {
    if (line.endsWith(" missing")) missing.push(line.slice(0, line.indexOf(" ")));
  }
  return missing;
}

async function hasPromisorPack(objectDir: string): Promise<boolean> {
  const names = await readdir(join(objectDir, "pack")).catch(() => [] as string[]);
  return names.some((name) => name.endsWith(".promisor"));
}

/** The first remote configured with `remote.<name>.promisor=true`. */
async function firstPromisorRemote(git: GitAdapter): Promise<string | undefined> {
  const lines = await git.text(["config", "--get-regexp", "^remote\\..*\\.promisor$"]).catch(() => "");
  for (const line of lines.split("\n")) {
    const match = /^remote\.(.+)\.promisor (true|yes|on|1)$/i.exec(line);
    if (match) return match[1];
  }
  return undefined;
}
