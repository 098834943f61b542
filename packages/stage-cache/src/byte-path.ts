/**
 * A name or path as a walk, a copy and a manifest carry it: its bytes, one character per byte (a "latin1"
 * string), whether or not they are UTF-8.
 *
 * Why not Buffers: names on disk are bytes and a copy must keep them exactly, but a tree has thousands of
 * names, and a Buffer per name and per join costs more than the system calls made with them. Strings of
 * bytes keep every byte, are joined and compared at string speed, and sort in byte order with `<`.
 * Listings are read in this form (`readdir` with the latin1 encoding), and it is turned into something the
 * filesystem takes ({@link fsPath}) or people read ({@link displayPath}) only where needed.
 *
 * The brand keeps text (a `string` meaning characters) and bytes apart: a text string is turned into a
 * byte path with {@link bytePathOfText}, never used as one.
 */
export type BytePath = string & { readonly [brand]: "BytePath" };
declare const brand: unique symbol;

/** The empty path: the root of a tree, as a relative path. */
export const ROOT_REL = "" as BytePath;

/** Characters that stand for bytes beyond ASCII. Where there are none, bytes and text are the same. */
const BEYOND_ASCII = /[\u0080-\u00ff]/;
const NOT_ASCII = /[\u0080-\uffff]/;

/** The byte path of `bytes`. */
export function bytePathOf(bytes: Buffer): BytePath {
  return bytes.toString("latin1") as BytePath;
}

/** The byte path of `text`: its UTF-8 encoding. */
export function bytePathOfText(text: string): BytePath {
  return (NOT_ASCII.test(text) ? Buffer.from(text, "utf8").toString("latin1") : text) as BytePath;
}

/** The bytes of `path`. */
export function pathBytes(path: BytePath): Buffer {
  return Buffer.from(path, "latin1");
}

/** `path` in a form `fs` takes: the string itself when it is ASCII (the common case), else its bytes. */
export function fsPath(path: BytePath): string | Buffer {
  return BEYOND_ASCII.test(path) ? Buffer.from(path, "latin1") : path;
}

/** `path` for messages: its bytes read as UTF-8 (bytes that are not UTF-8 show as U+FFFD). */
export function displayPath(path: BytePath): string {
  return BEYOND_ASCII.test(path) ? Buffer.from(path, "latin1").toString("utf8") : path;
}

/**
 * `base` + "/" + `name`: `name` alone when `base` is the empty relative path, and without doubling the
 * slash of a base that ends with one (the root directory "/").
 */
export function joinPath(base: BytePath, name: BytePath): BytePath {
  if (base.length === 0) return name;
  return (base.charCodeAt(base.length - 1) === 0x2f ? base + name : `${base}/${name}`) as BytePath;
}

/** Orders byte paths by their bytes (latin1 strings compare as their bytes do). */
export function compareBytePaths(a: BytePath, b: BytePath): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
