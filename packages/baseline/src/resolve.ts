import { join } from "node:path";
import { BaselineError } from "./errors.js";
import { GitAdapter } from "./git.js";
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
 * `location.upstream`, when set, is the merge-base of HEAD with `@{upstream}` already being computed
 * (`locateRepo` starts it beside its own git process, so a cache hit waits for one git process).
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
    if (location.verified) return local(location.verified, `explicit base ${base}`);
    if (!isFetchableRevision(base)) {
      throw new BaselineError(
        "EUNKNOWNBASE",
        `unknown base ${JSON.stringify(base)}: it names no single commit in ${location.root} (a range or other expression is not a base); pass a branch, tag or commit`,
      );
    }
    const tried = [base];
    if (!base.includes("/")) {
      const viaOrigin = await git.commitOf(`refs/remotes/origin/${base}`);
      if (viaOrigin) return local(viaOrigin, `explicit base ${base} (via origin/${base})`);
      tried.push(`origin/${base}`);
    }
    const url = await git.remoteUrl("origin");
    if (!url) {
      throw new BaselineError(
        "EUNKNOWNBASE",
        `unknown base ${base}: tried ${tried.join(", ")} in ${location.root}, and there is no origin remote to fetch it from; pass a revision that exists`,
      );
    }
    // Loaded only when a fetch happens: it brings simple-git.
    const { fetchBase } = await import("./fetch.js");
    const fetched = await fetchBase(location, { name: "origin", url }, base, signal).catch(
      (error: unknown) => {
        if (error instanceof BaselineError && error.code === "EUNKNOWNBASE") {
          throw new BaselineError(
            "EUNKNOWNBASE",
            `unknown base ${base}: tried ${[...tried, `fetching ${base} from origin (${url})`].join(", ")}; ${error.message}`,
            { cause: error },
          );
        }
        throw error;
      },
    );
    return {
      commit: fetched.commit,
      source: `explicit base ${base} (fetched from origin)`,
      objectDirs: [...objectDirs, fetched.objectDir],
      release: fetched.release,
    };
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
  const upstream = await (location.upstream ?? git.mergeBase(head, "@{upstream}"));
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
