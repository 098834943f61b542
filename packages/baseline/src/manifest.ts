import { open } from "node:fs/promises";
import { BaselineError } from "./errors.js";
import { userGitEnvironment } from "./git-env.js";
import { runGit } from "./git-process.js";
import { entryOid, entryPath, type ParsedIndex, parseIndex } from "./index-file.js";

/** How git records an entry that is written as a file or a symlink (canonical modes only). */
export type EntryMode = "100644" | "100755" | "120000";

/** One entry of a commit's tree as a baseline holds it. */
export interface ManifestEntry {
  mode: EntryMode;
  /** The blob id (hex): SHA-1 for a 40-digit commit, SHA-256 for a 64-digit one. */
  oid: string;
  /** `/`-separated path relative to the tree's root, as bytes (it need not be UTF-8). */
  path: Buffer;
}

/**
 * The entries a baseline of `commit` holds according to git: every blob of its tree (submodules are
 * skipped, as the writer skips them), in git's order, from one `git ls-tree -r -z --full-tree <commit>` run
 * in `cwd` (a directory of a repository holding the commit's objects). `verify` compares slots with it when
 * given a repository; a build records the index `writeTree` wrote the files from instead.
 *
 * Throws {@link BaselineError} `EGIT` when git fails (an unknown commit, a broken repository), and
 * `signal.reason` when aborted.
 */
export async function readTreeEntries(
  cwd: string,
  commit: string,
  signal?: AbortSignal,
): Promise<ManifestEntry[]> {
  const args = ["ls-tree", "-r", "-z", "--full-tree", commit];
  const result = await runGit(args, { cwd, env: userGitEnvironment(), signal });
  if (result.code !== 0) {
    throw new BaselineError("EGIT", `git ${args.join(" ")} failed in ${cwd}: ${result.stderr.trim()}`);
  }
  const output = result.stdout;
  const entries: ManifestEntry[] = [];
  for (let at = 0; at < output.length; ) {
    const end = output.indexOf(0, at);
    const record = output.subarray(at, end < 0 ? output.length : end);
    at = end < 0 ? output.length : end + 1;
    const tab = record.indexOf(0x09);
    const [mode, type, oid] = record.toString("latin1", 0, Math.max(tab, 0)).split(" ");
    if (tab < 0 || mode === undefined || oid === undefined) {
      throw new BaselineError("EGIT", `git ls-tree ${commit} printed a line it should not have`);
    }
    if (type !== "blob") continue;
    entries.push({ mode: canonicalMode(Number.parseInt(mode, 8)), oid, path: record.subarray(tab + 1) });
  }
  return entries;
}

const MAGIC = "cas-baseline-manifest 2";
const MODE_GITLINK = 0o160000;

/**
 * Writes the manifest of `commit` to the new file `path` (which must not exist: `EEXIST`): a header line
 * `cas-baseline-manifest 2 <commit>`, then the index `git read-tree` wrote for the commit's tree, byte for
 * byte (`gitformat-index`: each entry's mode, blob id and path, in git's order). Nothing is measured,
 * encoded or copied: the index is already in memory, and is written as it is (terraform's 5,457 entries:
 * 790 KB). Throws the filesystem's error.
 */
export async function writeManifest(path: string, commit: string, index: Buffer): Promise<void> {
  const file = await open(path, "wx");
  try {
    // writeFile, unlike one write or writev, goes on until every byte is written.
    await file.writeFile(`${MAGIC} ${commit}\n`);
    await file.writeFile(index);
  } finally {
    await file.close();
  }
}

/**
 * The commit and entries (files and symlinks; submodules are not written, so not listed) of manifest
 * bytes, or undefined when they are not a manifest this version wrote.
 */
export function decodeManifest(bytes: Buffer): { commit: string; entries: ManifestEntry[] } | undefined {
  const newline = bytes.indexOf(0x0a);
  const header = bytes.toString("latin1", 0, Math.max(newline, 0));
  if (!header.startsWith(`${MAGIC} `)) return undefined;
  const commit = header.slice(MAGIC.length + 1);
  if (!/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(commit)) return undefined;
  let index: ParsedIndex;
  try {
    index = parseIndex(bytes.subarray(newline + 1), commit.length / 2);
  } catch {
    return undefined;
  }
  const entries: ManifestEntry[] = [];
  for (let i = 0; i < index.count; i++) {
    const mode = index.modes[i] as number;
    if (mode === MODE_GITLINK) continue;
    entries.push({
      mode: canonicalMode(mode),
      oid: entryOid(index, i),
      path: entryPath(index, i),
    });
  }
  return { commit, entries };
}

/** git's own reading of a blob's mode: a symlink, or a file that is executable when its owner may run it. */
function canonicalMode(mode: number): EntryMode {
  if (mode === 0o120000) return "120000";
  return (mode & 0o100) !== 0 ? "100755" : "100644";
}
