// Scripts that another user runs, copied with everything they load into a place every user can enter.
//
// Tests (and the torture run) start some workers as the user nobody, to see a shared cache as a second user
// does. Those workers load their script, the packages' built code and its dependencies from the checkout,
// but the checkout may lie in a directory nobody cannot traverse (a clone under `mktemp -d`, mode 0700), and
// a test must not open up the user's checkout or its parents. So nobody runs a copy: under a fresh temp
// directory, every file sits at its own absolute path (prefixed by that directory) and every symlink
// the module resolution follows (node_modules/<name> of pnpm, a workspace link) is there too, pointing at the
// copy of its target. Relative imports and node_modules lookups therefore resolve in the copy exactly as
// they do in the checkout. Plain JavaScript, so that bare node (the torture supervisor) can use it too.
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
} from "node:fs";
import { isBuiltin } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve, sep } from "node:path";

/** The module specifiers a script names: static imports and re-exports, and dynamic imports of a literal. */
const SPECIFIER = /\b(?:from|import)\s*\(?\s*["']([^"']+)["']/g;

/**
 * A fresh directory that every user can enter (dirs 0755, files at least 0444), holding copies of
 * the scripts given to `add` and of everything they load: the scripts themselves and the other scripts they
 * import by relative path; and whole packages, for an import of a package by name or of a file a package
 * ships (its package.json `files`), with the dependencies, optional and peer dependencies of each package,
 * transitively. A package is copied as it ships (its `files`, or all of it but node_modules when it has no
 * such list), so built code must be built before (dist). Node builtins are not copied.
 *
 * The directory is made in os.tmpdir(), or in /tmp when other users cannot reach os.tmpdir(); the constructor
 * throws (code EACCES, `path` the directory in the way) when they can reach neither. It stays until
 * `remove()`.
 */
export class CopyForOtherUsers {
  /** The directory holding the copy. */
  root;
  #done = new Set();

  constructor() {
    this.root = mkdtempSync(join(reachableTempDir(), "cas-for-others-"));
    try {
      chmodSync(this.root, 0o755);
    } catch (error) {
      this.remove();
      throw error;
    }
  }

  /**
   * Copies `script` and what it loads (see the class), unless already copied, and returns the path of its
   * copy. Throws when an import cannot be found (naming the importing file and the specifier).
   */
  add(script) {
    const real = realpathSync(script);
    this.#addTarget(real);
    return this.#at(real);
  }

  /** Removes the copy, everything in it. */
  remove() {
    rmSync(this.root, { recursive: true, force: true, maxRetries: 3 });
  }

  /** Where the copy of the real path `path` lives. */
  #at(path) {
    return join(this.root, path);
  }

  /** A file a relative import (or the caller) names: within what a package ships, the package; else itself. */
  #addTarget(file) {
    const pkg = packageDirOf(file);
    if (pkg && shipsFile(pkg, file)) this.#addPackage(pkg);
    else this.#addScript(file, pkg);
  }

  /** One script: the file, its package's package.json (its module type), and what it imports. */
  #addScript(file, pkg) {
    if (this.#once(`script:${file}`)) return;
    this.#copyFile(file);
    if (pkg) this.#copyFile(join(pkg, "package.json"));
    const source = readFileSync(file, "utf8").replace(/^\s*\/\/.*$/gm, "");
    for (const [, specifier] of source.matchAll(SPECIFIER)) {
      if (isBuiltin(specifier)) continue;
      if (specifier.startsWith(".") || specifier.startsWith("/")) {
        const target = resolve(dirname(file), specifier);
        if (!existsSync(target))
          throw new Error(`${file} imports ${specifier}, and ${target} does not exist`);
        this.#addTarget(realpathSync(target));
      } else {
        this.#addDependency(dirname(file), packageName(specifier), false, file);
      }
    }
  }

  /** A package as it ships, and its dependencies. */
  #addPackage(dir) {
    if (this.#once(`package:${dir}`)) return;
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    this.#copyFile(join(dir, "package.json"));
    for (const entry of shippedEntries(dir, manifest)) {
      const from = join(dir, entry);
      if (existsSync(from)) this.#copyTree(from);
    }
    for (const field of ["dependencies", "optionalDependencies", "peerDependencies"]) {
      const optional = field !== "dependencies";
      for (const name of Object.keys(manifest[field] ?? {})) this.#addDependency(dir, name, optional, dir);
    }
  }

  /** The package `name` as node finds it from `fromDir`: the node_modules entry leading to it, and itself. */
  #addDependency(fromDir, name, optional, importer) {
    for (let dir = fromDir; ; dir = dirname(dir)) {
      const candidate = join(dir, "node_modules", name);
      if (basename(dir) !== "node_modules" && existsSync(candidate)) {
        this.#addPackage(this.#follow(candidate));
        return;
      }
      if (dir === dirname(dir)) break;
    }
    if (!optional) throw new Error(`${importer} needs the package ${name}, which is not installed there`);
  }

  /**
   * Makes `path` resolve in the copy as it does here: every symlink on the way is recreated there (relative,
   * pointing at the copy of its target). Returns the real path `path` leads to.
   */
  #follow(path) {
    let real = sep;
    for (const part of path.split(sep).filter(Boolean)) {
      const next = join(real, part);
      if (!lstatSync(next).isSymbolicLink()) {
        real = next;
        continue;
      }
      const target = this.#follow(resolve(real, readlinkSync(next)));
      if (!this.#once(`link:${next}`)) {
        this.#makeDirs(real);
        symlinkSync(relative(real, target), this.#at(next));
      }
      real = target;
    }
    return real;
  }

  #copyTree(from) {
    const stats = lstatSync(from);
    if (stats.isDirectory()) {
      this.#makeDirs(from);
      for (const name of readdirSync(from)) if (name !== "node_modules") this.#copyTree(join(from, name));
    } else if (stats.isSymbolicLink()) {
      if (this.#once(`link:${from}`)) return;
      this.#makeDirs(dirname(from));
      symlinkSync(readlinkSync(from), this.#at(from));
    } else {
      this.#copyFile(from);
    }
  }

  #copyFile(from) {
    if (this.#once(`file:${from}`)) return;
    this.#makeDirs(dirname(from));
    copyFileSync(from, this.#at(from));
    // Readable by all, whatever the checkout's umask made it; executable by all when executable here.
    const mode = statSync(from).mode & 0o777;
    chmodSync(this.#at(from), mode | 0o444 | (mode & 0o111 ? 0o111 : 0));
  }

  /** The copy of the directory `dir` and of each of its parents, each 0755 whatever the umask. */
  #makeDirs(dir) {
    if (dir === sep || this.#once(`dir:${dir}`)) return;
    this.#makeDirs(dirname(dir));
    mkdirSync(this.#at(dir), { recursive: true });
    chmodSync(this.#at(dir), 0o755);
  }

  /** True when `key` (a kind of thing and its path) was seen before; marks it seen. */
  #once(key) {
    if (this.#done.has(key)) return true;
    this.#done.add(key);
    return false;
  }
}

/**
 * os.tmpdir() when other users can reach it, else /tmp when they can reach that (a test may point TMPDIR at
 * a private directory); throws (code EACCES, `path` the directory in the way) when neither.
 */
function reachableTempDir() {
  const blocked = [];
  for (const dir of new Set([tmpdir(), "/tmp"])) {
    const inTheWay = notSearchableByOthers(dir);
    if (inTheWay === undefined) return dir;
    blocked.push(inTheWay);
  }
  throw Object.assign(
    new Error(
      `no temp dir that other users can enter: ${blocked.join(" and ")} cannot be searched by them; set TMPDIR to a directory every user can enter`,
    ),
    { code: "EACCES", path: blocked[0] },
  );
}

/** The first directory from `dir` up to / that other users may not pass through, or undefined. */
function notSearchableByOthers(dir) {
  for (let at = dir; ; at = dirname(at)) {
    const mode = statSync(at, { throwIfNoEntry: false })?.mode ?? 0;
    if ((mode & 0o001) === 0) return at;
    if (at === dirname(at)) return undefined;
  }
}

/** The directory of the package.json nearest above `file`, or undefined. */
function packageDirOf(file) {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
    if (dir === dirname(dir)) return undefined;
  }
}

/** The paths, relative to the package, of what it ships: its `files` list, or everything when it has none. */
function shippedEntries(dir, manifest) {
  const files = (manifest.files ?? []).filter((entry) => !entry.startsWith("!"));
  // A glob is not worth interpreting here: such a package is copied whole.
  if (files.length === 0 || files.some((entry) => /[*?[\]{}]/.test(entry))) return readdirSync(dir);
  return files.map((entry) => entry.replace(/^\.\//, "").replace(/\/$/, ""));
}

/** Whether `file` is within what the package at `dir` ships; never for a package without a `files` list. */
function shipsFile(dir, file) {
  const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  if (!manifest.files) return false;
  const rel = relative(dir, file);
  return shippedEntries(dir, manifest).some((entry) => rel === entry || rel.startsWith(`${entry}${sep}`));
}

/** `@scope/name` or `name` from a bare specifier such as `@scope/name/sub/path`. */
function packageName(specifier) {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0];
}
