import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * The attributes that make git write a blob's bytes unchanged: no eol conversion (`text`, `eol`, the
 * legacy `crlf`), no `ident` expansion, no filter driver (git-lfs, smudge), no re-encoding. In
 * `info/attributes` they outrank every `.gitattributes` of the tree, for every path.
 */
export const RAW_ATTRIBUTES = "* -text -eol -crlf -ident -filter -working-tree-encoding\n";

/** What a private repository is made of. */
export interface PrivateRepoOptions {
  /** Object directories it reads through `objects/info/alternates` (the user's, a fetched base's). */
  alternates: readonly string[];
  /** The hash of the objects: SHA-1 (40-hex ids) or SHA-256 (64-hex ids). */
  objectFormat: "sha1" | "sha256";
}

/**
 * Makes `gitDir` a git directory of the cache's own, by hand (no `git init`, so no template hooks and no
 * user configuration): `HEAD`, `refs/`, an empty object store that borrows `alternates`, a `config` that
 * names only the object format, and {@link RAW_ATTRIBUTES} in `info/attributes`. It has no remote, so git
 * running in it never fetches on its own (a missing object is an error, not a lazy fetch), and nothing
 * git does in it touches the repositories it borrows from. `gitDir` may already exist as an empty
 * directory.
 */
export async function createPrivateRepo(gitDir: string, options: PrivateRepoOptions): Promise<void> {
  await mkdir(join(gitDir, "objects", "info"), { recursive: true });
  await Promise.all([
    mkdir(join(gitDir, "refs")),
    mkdir(join(gitDir, "info")).then(() => writeFile(join(gitDir, "info", "attributes"), RAW_ATTRIBUTES)),
    writeFile(join(gitDir, "HEAD"), "ref: refs/heads/main\n"),
    writeFile(
      join(gitDir, "config"),
      options.objectFormat === "sha256"
        ? "[core]\n\trepositoryformatversion = 1\n[extensions]\n\tobjectformat = sha256\n"
        : "[core]\n\trepositoryformatversion = 0\n",
    ),
    writeFile(
      join(gitDir, "objects", "info", "alternates"),
      options.alternates.map((dir) => `${dir}\n`).join(""),
    ),
  ]);
}

/** Removes everything inside `gitDir` and keeps the directory itself, empty. */
export async function emptyDirectory(dir: string): Promise<void> {
  const names = await readdir(dir);
  await Promise.all(
    names.map((name) => rm(join(dir, name), { recursive: true, force: true, maxRetries: 3 })),
  );
}

/** The object format of a repository whose commit ids look like `commit`. */
export function objectFormatOf(commit: string): "sha1" | "sha256" {
  return commit.length === 64 ? "sha256" : "sha1";
}
