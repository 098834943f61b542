import { BaselineError } from "./errors.js";

/** What an entry of a git tree is, from its mode. */
export type EntryKind = "file" | "executable" | "symlink" | "tree" | "submodule";

/** One entry of a raw git tree object, with its name kept as bytes (it need not be UTF-8). */
export interface TreeEntry {
  kind: EntryKind;
  name: Buffer;
  oid: string;
}

const KIND_BY_MODE: Record<string, EntryKind> = {
  "100644": "file",
  // Written by very old git versions; git itself checks it out as a regular file.
  "100664": "file",
  "100755": "executable",
  "120000": "symlink",
  "40000": "tree",
  "160000": "submodule",
};

const SPACE = 0x20;
const NUL = 0x00;
const SLASH = 0x2f;
const BACKSLASH = 0x5c;

/**
 * Parses the body of a tree object (`<mode> <name>\0<raw oid>` repeated), validating every entry name with
 * {@link checkEntryName} and rejecting duplicate names, which is how a tree would smuggle a path through
 * a symlink (a symlink `a` beside a tree `a`). `oidBytes` is 20 for SHA-1, 32 for SHA-256.
 * Throws {@link BaselineError} `EBADTREE` naming `where` (the tree's path, "" for the root).
 */
export function parseTree(body: Buffer, oidBytes: number, where: string): TreeEntry[] {
  const entries: TreeEntry[] = [];
  const seen = new Map<string, EntryKind>();
  let at = 0;
  while (at < body.length) {
    const space = body.indexOf(SPACE, at);
    const mode = space < 0 ? "" : body.toString("latin1", at, space);
    const kind = KIND_BY_MODE[mode];
    if (kind === undefined) {
      throw badTree(
        `tree ${describe(where)} has an entry with unsupported mode "${mode}" (a corrupt or hostile tree)`,
      );
    }
    const nul = body.indexOf(NUL, space + 1);
    if (nul < 0 || nul + 1 + oidBytes > body.length) {
      throw badTree(`tree ${describe(where)} is truncated (a corrupt or hostile tree)`);
    }
    const name = body.subarray(space + 1, nul);
    checkEntryName(name, where);
    const key = name.toString("latin1");
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      const path = joinPath(where, name);
      throw badTree(
        earlier === "symlink" || kind === "symlink"
          ? `tree entry ${path} is both a symlink and another entry: a path through a symlink is refused`
          : `tree ${describe(where)} holds ${path} twice (a hostile tree)`,
      );
    }
    seen.set(key, kind);
    entries.push({ kind, name, oid: body.toString("hex", nul + 1, nul + 1 + oidBytes) });
    at = nul + 1 + oidBytes;
  }
  return entries;
}

/**
 * Refuses a name that cannot be a single, safe path component: empty, `.`, `..`, `.git` in any case, or
 * holding `/`, `\` or NUL. git's own fsck flags these, but `git mktree` and `hash-object --literally`
 * accept them, so a fetched tree can hold them. Throws {@link BaselineError} `EBADTREE`.
 */
export function checkEntryName(name: Buffer, where: string): void {
  const text = name.toString("latin1");
  let reason: string | undefined;
  if (name.length === 0) reason = "an empty name";
  else if (text === "." || text === "..") reason = `the name "${text}"`;
  else if (text.toLowerCase() === ".git") reason = `the name "${text}" (would pose as a repository)`;
  else if (name.includes(SLASH) || name.includes(BACKSLASH) || name.includes(NUL)) {
    reason = `the name ${JSON.stringify(name.toString("utf8"))}, which holds a path separator or NUL`;
  }
  if (reason) throw badTree(`tree ${describe(where)} has an entry with ${reason}: refusing to write it`);
}

/** `dir/name` with the name decoded for messages (lossy for non-UTF-8 bytes; only used in text). */
export function joinPath(dir: string, name: Buffer): string {
  const text = name.toString("utf8");
  return dir ? `${dir}/${text}` : text;
}

function describe(where: string): string {
  return where ? `"${where}"` : "at the root";
}

function badTree(message: string): BaselineError {
  return new BaselineError("EBADTREE", message);
}
