import { BaselineError } from "./errors.js";

/** What an entry of a git tree is, from its mode. */
export type EntryKind = "file" | "executable" | "symlink" | "tree" | "submodule";

const SPACE = 0x20;
const NUL = 0x00;
const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const DOT = 0x2e;

/**
 * What git makes of a tree entry's mode bits (its `canon_mode`): any regular-file mode is a file,
 * executable when the owner's execute bit is set (so `100664` and `100600` are plain files, as git checks
 * them out); `120000` a symlink; any directory mode a tree (`40000` or zero-padded `040000`); anything
 * else a gitlink, that is a submodule. A mode that is not octal digits git rejects as malformed.
 */
function kindOfBits(bits: number): EntryKind {
  switch (bits & 0o170000) {
    case 0o100000:
      return bits & 0o100 ? "executable" : "file";
    case 0o120000:
      return "symlink";
    case 0o040000:
      return "tree";
    default:
      return "submodule";
  }
}

/**
 * Validates the body of a tree object (`<mode> <name>\0<raw oid>` repeated): every mode must be one git
 * can read ({@link kindOfBits}), every name must pass {@link checkEntryName}, and no name may appear
 * twice, which is how a tree would smuggle a path through a symlink (a symlink `a` beside a tree `a`).
 * `oidBytes` is 20 for SHA-1, 32 for SHA-256; `where` is the tree's path (empty for the root), decoded only
 * for a message; `onSubtree` receives each subtree's name and id. Throws {@link BaselineError} `EBADTREE`.
 *
 * Written for speed (every tree of a commit passes through it): bytes are examined in place, and strings
 * are made only for an error or once the names stop increasing.
 */
export function checkTree(
  body: Buffer,
  oidBytes: number,
  where: Where,
  onSubtree?: (name: Buffer, oid: string) => void,
): void {
  let seen: Map<string, EntryKind> | undefined;
  let previousStart = -1;
  let previousEnd = -1;
  let at = 0;
  while (at < body.length) {
    // The mode: octal digits up to a space, at most seven of them.
    let bits = 0;
    let digits = 0;
    let byte = body[at];
    while (byte !== undefined && byte >= 0x30 && byte <= 0x37 && digits < 8) {
      bits = bits * 8 + byte - 0x30;
      digits++;
      byte = body[at + digits];
    }
    if (byte !== SPACE || digits === 0 || digits > 7) {
      const space = body.indexOf(SPACE, at);
      const mode = body.toString("latin1", at, space < 0 ? Math.min(body.length, at + 16) : space);
      throw badTree(
        `tree ${describe(where)} has an entry with malformed mode "${mode}" (a corrupt or hostile tree)`,
      );
    }
    const kind = kindOfBits(bits);
    const nameStart = at + digits + 1;
    const nul = body.indexOf(NUL, nameStart);
    if (nul < 0 || nul + 1 + oidBytes > body.length) {
      throw badTree(`tree ${describe(where)} is truncated (a corrupt or hostile tree)`);
    }
    // Most names are plain: no separator, not starting with a dot, not empty.
    let plain = nul > nameStart && body[nameStart] !== DOT;
    for (let i = nameStart; plain && i < nul; i++) {
      if (body[i] === SLASH || body[i] === BACKSLASH) plain = false;
    }
    if (!plain) checkEntryName(body.subarray(nameStart, nul), where);
    // While names strictly increase bytewise none can repeat; git's own order breaks that only around a
    // tree (sorted as "name/"), so the map of names seen is built only from the first break on.
    if (
      seen === undefined &&
      previousStart >= 0 &&
      body.compare(body, nameStart, nul, previousStart, previousEnd) >= 0
    ) {
      seen = namesBefore(body, at, oidBytes);
    }
    if (seen !== undefined) {
      const key = body.toString("latin1", nameStart, nul);
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        const path = joinPath(whereText(where), body.subarray(nameStart, nul));
        throw badTree(
          earlier === "symlink" || kind === "symlink"
            ? `tree entry ${path} is both a symlink and another entry: a path through a symlink is refused`
            : `tree ${describe(where)} holds ${path} twice (a hostile tree)`,
        );
      }
      seen.set(key, kind);
    }
    if (kind === "tree" && onSubtree) {
      onSubtree(body.subarray(nameStart, nul), body.toString("hex", nul + 1, nul + 1 + oidBytes));
    }
    previousStart = nameStart;
    previousEnd = nul;
    at = nul + 1 + oidBytes;
  }
}

/** The names (and kinds) of the entries of a tree body before offset `end`, already validated. */
function namesBefore(body: Buffer, end: number, oidBytes: number): Map<string, EntryKind> {
  const names = new Map<string, EntryKind>();
  for (let at = 0; at < end; ) {
    const space = body.indexOf(SPACE, at);
    const nul = body.indexOf(NUL, space + 1);
    names.set(
      body.toString("latin1", space + 1, nul),
      kindOfBits(Number.parseInt(body.toString("latin1", at, space), 8)),
    );
    at = nul + 1 + oidBytes;
  }
  return names;
}

/**
 * Refuses a name that cannot be a single, safe path component: empty, `.`, `..`, `.git` in any case, or
 * holding `/`, `\` or NUL. git's own fsck flags these, but `git mktree` and `hash-object --literally`
 * accept them, so a fetched tree can hold them. Throws {@link BaselineError} `EBADTREE`.
 */
export function checkEntryName(name: Buffer, where: Where): void {
  let reason: string | undefined;
  if (name.length === 0) reason = "an empty name";
  else if (name[0] === DOT && name.length <= 4) {
    const text = name.toString("latin1");
    if (text === "." || text === "..") reason = `the name "${text}"`;
    else if (text.toLowerCase() === ".git") reason = `the name "${text}" (would pose as a repository)`;
  }
  if (reason === undefined && (name.includes(SLASH) || name.includes(BACKSLASH) || name.includes(NUL))) {
    reason = `the name ${JSON.stringify(name.toString("utf8"))}, which holds a path separator or NUL`;
  }
  if (reason) throw badTree(`tree ${describe(where)} has an entry with ${reason}: refusing to write it`);
}

/** `dir/name` with the name decoded for messages (lossy for non-UTF-8 bytes; only used in text). */
function joinPath(dir: string, name: Buffer): string {
  const text = name.toString("utf8");
  return dir ? `${dir}/${text}` : text;
}

/** Where a tree is, for messages: its path ("" for the root), or a function that makes it when needed. */
export type Where = string | Buffer | (() => string);

function whereText(where: Where): string {
  return typeof where === "function" ? where() : where.toString();
}

function describe(where: Where): string {
  const text = whereText(where);
  return text ? `"${text}"` : "at the root";
}

function badTree(message: string): BaselineError {
  return new BaselineError("EBADTREE", message);
}
