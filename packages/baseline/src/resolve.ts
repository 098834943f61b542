import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { BaselineError, messageOf } from "./errors.js";
import { GitAdapter } from "./git.js";
import { FETCH_REPO_PREFIX } from "./layout.js";
import type { RepoLocation } from "./repo.js";

/** The chosen baseline commit, and the repository its objects can be read from. */
export interface ResolvedBase {
  commit: string;
  /** How it was picked, e.g. `merge-base with origin/HEAD`. */
  source: string;
  /** Directory to run `git cat-file` in: the user's working tree, or the throwaway repository. */
  objectsCwd: string;
  /** Removes the throwaway repository, if one was made. Never throws. */
  release: () => Promise<void>;
}

/** The auto-detection ladder after the upstream, in order. The first that has a merge-base wins. */
const LADDER = ["origin/HEAD", "origin/main", "origin/master"] as const;

/**
 * Picks the baseline commit for the repository at `location`.
 *
 * - With `base`: `base` itself, then `origin/<base>` when it holds no `/`, then `base` fetched from the
 *   `origin` remote into a throwaway repository under the OS temp dir (whose object store borrows the
 *   user's through `objects/info/alternates`), so the user's repository never gains a ref or an object.
 * - Without: the merge-base of HEAD with the branch's upstream, then with origin/HEAD, origin/main,
 *   origin/master. There is no fallback to HEAD itself.
 *
 * Throws {@link BaselineError}: `ENOCOMMITS`, `ESHALLOW`, `ENOBASE` (auto-detection), `EUNKNOWNBASE`
 * (explicit). On failure no throwaway repository is left behind.
 */
export async function resolveBase(
  location: RepoLocation,
  base: string | undefined,
  signal?: AbortSignal,
): Promise<ResolvedBase> {
  const git = new GitAdapter(location.root, signal);
  const local = (commit: string, source: string): ResolvedBase => ({
    commit,
    source,
    objectsCwd: location.root,
    release: async () => {},
  });

  if (base !== undefined) {
    if (base === "") throw new BaselineError("EUNKNOWNBASE", "the explicit base is empty; pass a revision");
    const direct = await git.commitOf(base);
    if (direct) return local(direct, `explicit --base=${base}`);
    const tried = [base];
    if (!base.includes("/")) {
      const viaOrigin = await git.commitOf(`refs/remotes/origin/${base}`);
      if (viaOrigin) return local(viaOrigin, `explicit --base=${base} (via origin/${base})`);
      tried.push(`origin/${base}`);
    }
    return fetchFromOrigin(git, location, base, tried, signal);
  }

  const head = await git.commitOf("HEAD");
  if (!head) {
    throw new BaselineError(
      "ENOCOMMITS",
      `HEAD of ${location.root} has no commits yet, so there is no history to pick a baseline from; commit first or pass --base`,
    );
  }
  if (location.shallow) {
    // In a shallow clone the history that holds the merge-base is usually missing, and a merge-base
    // computed over a truncated history can be silently wrong: refuse rather than guess.
    throw new BaselineError(
      "ESHALLOW",
      `${location.root} is a shallow clone, so the merge-base cannot be computed reliably; fetch the full history (actions/checkout: fetch-depth: 0, or run git fetch --unshallow) or pass an explicit base with --base`,
    );
  }
  const upstream = await git.mergeBase("HEAD", "@{upstream}");
  if (upstream) return local(upstream, "merge-base with @{u}");
  for (const rung of LADDER) {
    const commit = await git.mergeBase("HEAD", `refs/remotes/${rung}`);
    if (commit) return local(commit, `merge-base with ${rung}`);
  }
  throw new BaselineError(
    "ENOBASE",
    `cannot pick a baseline for ${location.root}: the branch has no upstream and none of ${LADDER.join(", ")} exists or shares history with HEAD; pass an explicit base with --base <rev>`,
  );
}

async function fetchFromOrigin(
  git: GitAdapter,
  location: RepoLocation,
  base: string,
  tried: string[],
  signal: AbortSignal | undefined,
): Promise<ResolvedBase> {
  const url = await git.remoteUrl("origin");
  if (!url) {
    throw new BaselineError(
      "EUNKNOWNBASE",
      `unknown base ${base}: tried ${tried.join(", ")} in ${location.root}, and there is no origin remote to fetch it from; pass a revision that exists`,
    );
  }
  const scratch = await mkdtemp(join(tmpdir(), FETCH_REPO_PREFIX));
  const release = () => rm(scratch, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
  try {
    const throwaway = new GitAdapter(scratch, signal);
    await throwaway.initBare();
    // Borrow the user's objects read-only, so the fetch only transfers what is missing and the user's
    // repository gains nothing.
    await mkdir(join(scratch, "objects", "info"), { recursive: true });
    await writeFile(
      join(scratch, "objects", "info", "alternates"),
      `${join(location.commonDir, "objects")}\n`,
    );
    let commit: string;
    try {
      commit = await throwaway.fetchCommit(absoluteRemoteUrl(url, location.root), base);
    } catch (error) {
      signal?.throwIfAborted();
      throw new BaselineError(
        "EUNKNOWNBASE",
        `unknown base ${base}: tried ${[...tried, `fetching ${base} from origin (${url})`].join(", ")}; the fetch failed: ${messageOf(error)}`,
        { cause: error },
      );
    }
    return { commit, source: `explicit --base=${base} (fetched from origin)`, objectsCwd: scratch, release };
  } catch (error) {
    await release();
    throw error;
  }
}

/**
 * git resolves a relative local remote URL against the working tree's top level; the fetch runs elsewhere,
 * so make such a URL absolute. URLs with a scheme and scp-like `host:path` are left alone.
 */
function absoluteRemoteUrl(url: string, root: string): string {
  if (url.includes("://") || isAbsolute(url)) return url;
  const colon = url.indexOf(":");
  const slash = url.indexOf("/");
  if (colon > 0 && (slash < 0 || colon < slash)) return url;
  return resolve(root, url);
}
