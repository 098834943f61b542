import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { BaselineError } from "./errors.js";
import { type FetchSource, fetchRevision, userConfigFile } from "./fetch.js";
import { GitAdapter } from "./git.js";
import { FETCH_REPO_PREFIX } from "./layout.js";
import { createPrivateRepo } from "./private-repo.js";
import type { RepoLocation } from "./repo.js";

/** The chosen baseline commit, and where its objects are. */
export interface ResolvedBase {
  commit: string;
  /** How it was picked, e.g. `merge-base with origin/HEAD`. */
  source: string;
  /** Object directories holding the commit's objects: the user's, plus the throwaway repository's. */
  objectDirs: string[];
  /** Removes the throwaway repository, if one was made. Never throws. */
  release: () => Promise<void>;
}

/** The auto-detection ladder after the upstream, in order. The first that has a merge-base wins. */
const LADDER = ["origin/HEAD", "origin/main", "origin/master"] as const;

/**
 * Picks the baseline commit for the repository at `location` (whose `verified` must be the commit of
 * `base`, or of `HEAD` without a base, as `locateRepo` resolves it).
 *
 * - With `base`: `base` itself, then `origin/<base>` when it holds no `/`, then `base` fetched from the
 *   `origin` remote into a throwaway repository under the OS temp dir (whose object store borrows the
 *   user's through `objects/info/alternates`), so the user's repository never gains a ref or an object.
 *   A base that can name no single commit (a range such as `a..b`) is refused at once.
 * - Without: the merge-base of HEAD with the branch's upstream, then with origin/HEAD, origin/main,
 *   origin/master. There is no fallback to HEAD itself.
 *
 * Throws {@link BaselineError}: `ENOCOMMITS`, `ESHALLOW`, `ENOBASE` (auto-detection), `EUNKNOWNBASE`
 * (explicit), `EFETCH` (the fetch of an explicit base failed). On failure no throwaway repository is left
 * behind.
 */
export async function resolveBase(
  location: RepoLocation,
  base: string | undefined,
  signal?: AbortSignal,
): Promise<ResolvedBase> {
  const git = new GitAdapter(location.root, signal);
  const objectDirs = [join(location.commonDir, "objects")];
  const local = (commit: string, source: string): ResolvedBase => ({
    commit,
    source,
    objectDirs,
    release: async () => {},
  });

  if (base !== undefined) {
    if (base === "") throw new BaselineError("EUNKNOWNBASE", "the explicit base is empty; pass a revision");
    if (location.verified) return local(location.verified, `explicit --base=${base}`);
    if (!isFetchableRevision(base)) {
      throw new BaselineError(
        "EUNKNOWNBASE",
        `unknown base ${JSON.stringify(base)}: it names no single commit in ${location.root} (a range or other expression is not a base); pass a branch, tag or commit`,
      );
    }
    const tried = [base];
    if (!base.includes("/")) {
      const viaOrigin = await git.commitOf(`refs/remotes/origin/${base}`);
      if (viaOrigin) return local(viaOrigin, `explicit --base=${base} (via origin/${base})`);
      tried.push(`origin/${base}`);
    }
    return fetchFromOrigin(git, location, base, tried, signal);
  }

  const head = location.verified;
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
  const upstream = await git.mergeBase(head, "@{upstream}");
  if (upstream) return local(upstream, "merge-base with @{u}");
  for (const rung of LADDER) {
    const commit = await git.mergeBase(head, `refs/remotes/${rung}`);
    if (commit) return local(commit, `merge-base with ${rung}`);
  }
  throw new BaselineError(
    "ENOBASE",
    `cannot pick a baseline for ${location.root}: the branch has no upstream and none of ${LADDER.join(", ")} exists or shares history with HEAD; pass an explicit base with --base <rev>`,
  );
}

/**
 * Whether `rev` could name something on a remote: a commit id, or a name git's ref rules allow (no
 * `..`, no control characters, spaces or `~^:?*[\`, not starting with `-`, no `@{`). Anything else is
 * an expression that only means something locally.
 */
function isFetchableRevision(rev: string): boolean {
  return (
    !rev.startsWith("-") &&
    !rev.includes("..") &&
    !rev.includes("@{") &&
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
    !/[\x00-\x20\x7f~^:?*[\\]/.test(rev) &&
    !rev.endsWith("/") &&
    !rev.endsWith(".")
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
    const userObjects = join(location.commonDir, "objects");
    // Borrow the user's objects read-only, so the fetch only transfers what is missing and the user's
    // repository gains nothing.
    await createPrivateRepo(scratch, { alternates: [userObjects], objectFormat: location.objectFormat });
    let commit: string;
    try {
      commit = await fetchRevision(scratch, remoteOf(location, "origin", url), base, signal);
    } catch (error) {
      if (error instanceof BaselineError && error.code === "EUNKNOWNBASE") {
        throw new BaselineError(
          "EUNKNOWNBASE",
          `unknown base ${base}: tried ${[...tried, `fetching ${base} from origin (${url})`].join(", ")}; ${error.message}`,
          { cause: error },
        );
      }
      throw error;
    }
    return {
      commit,
      source: `explicit --base=${base} (fetched from origin)`,
      objectDirs: [userObjects, join(scratch, "objects")],
      release,
    };
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
  const userConfig = userConfigFile(location.commonDir);
  if (url.includes("://") || isAbsolute(url)) return { userConfig, remote: name, url };
  const colon = url.indexOf(":");
  const slash = url.indexOf("/");
  // scp-like "host:path"
  if (colon > 0 && (slash < 0 || colon < slash)) return { userConfig, remote: name, url };
  const absolute = resolve(location.root, url);
  return { userConfig, remote: absolute, url: absolute };
}
