// What the torture run builds and how it checks a tree: source trees for the stage cache, a git repository
// for baselines, the attacked source whose entries an attacker swaps for symlinks, and a manifest of any
// directory (relative path -> kind, executable bit, git blob id) that can be compared with the source or
// with `git ls-tree` exactly.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmod,
  cp,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";

/** What the attacker tries to smuggle into a stage: it must never appear in one. */
export const SECRET = "TOPSECRET";

/** git's blob id of `content`: the same for a file on disk and its blob in the repository. */
function blobId(content) {
  return createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");
}

/**
 * The manifest of the tree at `root`, sorted by path. `ignoreAtRoot` names entries of the root to leave
 * out (the baseline's `.git` marker, the stage cache's sentinel). Throws ENOENT when a part vanishes.
 */
export async function manifestOf(root, ignoreAtRoot = []) {
  const lines = [];
  async function walk(dir, prefix) {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (prefix === "" && ignoreAtRoot.includes(entry.name)) continue;
      const path = join(dir, entry.name);
      const rel = prefix + entry.name;
      if (entry.isDirectory()) await walk(path, `${rel}/`);
      else if (entry.isSymbolicLink()) lines.push(`${rel} l ${blobId(Buffer.from(await readlink(path)))}`);
      else {
        const mode = (await lstat(path)).mode & 0o100 ? "x" : "-";
        lines.push(`${rel} f${mode} ${blobId(await readFile(path))}`);
      }
    }
  }
  await walk(root, "");
  return lines.sort().join("\n");
}

/** Whether any regular file under `root` holds {@link SECRET}. */
export async function holdsSecret(root) {
  for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    if ((await readFile(join(entry.parentPath, entry.name), "utf8")).includes(SECRET)) return true;
  }
  return false;
}

/** The manifest a materialization of `commit` must have, from `git ls-tree`. */
export function manifestOfCommit(repo, commit) {
  const out = execFileSync("git", ["-C", repo, "ls-tree", "-r", "-z", "--full-tree", commit], {
    encoding: "utf8",
  });
  const lines = [];
  for (const record of out.split("\0")) {
    if (!record) continue;
    const [meta, path] = record.split("\t");
    const [mode, , id] = meta.split(" ");
    if (mode === "160000") continue; // submodules are skipped
    lines.push(`${path} ${mode === "120000" ? "l" : mode === "100755" ? "fx" : "f-"} ${id}`);
  }
  return lines.sort().join("\n");
}

/** Writes a nested tree of `files` small files (some executable) whose contents depend on `seed`. */
export async function writeSourceTree(root, seed, files) {
  for (let i = 0; i < files; i++) {
    const dir = join(root, `d${i % 5}`, `e${i % 3}`);
    await mkdir(dir, { recursive: true });
    const path = join(dir, `f${i}.txt`);
    await writeFile(path, `${seed}:${i}\n`.repeat(1 + ((i * 37) % 200)));
    if (i % 7 === 0) await chmod(path, 0o755);
  }
}

/**
 * The attacked source, `<work>/swap`, and what the attacker needs: beside it `secret.txt` and `secretdir/`
 * hold the secret. Inside, `f` (a regular file) and `d` (a directory) are what the attacker keeps swapping
 * for symlinks to those, and `keep/` never changes. Returns the manifests a stage of it may legitimately
 * have: with or without `f`, with or without `d`'s files (a symlink leaving the source is skipped).
 */
export async function writeAttackedSource(work) {
  const source = join(work, "swap");
  await mkdir(join(work, "secretdir"), { recursive: true });
  await writeFile(join(work, "secret.txt"), `${SECRET}\n`);
  await writeFile(join(work, "secretdir", "inner.txt"), `${SECRET} in a directory\n`);
  await writeSourceTree(join(source, "keep"), "kept", 12);
  await writeFile(join(source, "f"), "public\n");
  await mkdir(join(source, "d"));
  await writeFile(join(source, "d", "inner.txt"), "public in a directory\n");
  // The stand-ins the attacker renames over f and d, and the originals it renames back.
  await symlink("../secret.txt", join(work, "swap-f-link"));
  await symlink("../secretdir", join(work, "swap-d-link"));

  const legitimate = new Set();
  const scratch = join(work, "swap-variants");
  for (const withFile of [true, false]) {
    for (const withDir of [true, false]) {
      const variant = join(scratch, `${withFile}-${withDir}`);
      await cp(join(source, "keep"), join(variant, "keep"), { recursive: true });
      if (withFile) await writeFile(join(variant, "f"), "public\n");
      if (withDir) await cp(join(source, "d"), join(variant, "d"), { recursive: true });
      legitimate.add(await manifestOf(variant));
    }
  }
  await rm(scratch, { recursive: true, force: true });
  return { source, legitimate: [...legitimate] };
}

/**
 * Creates a git repository with `commits` commits, each changing files, executables and a symlink, and
 * returns the commits' SHAs, oldest first.
 */
export async function writeRepository(repo, commits, files) {
  const env = {
    ...process.env,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_AUTHOR_NAME: "torture",
    GIT_AUTHOR_EMAIL: "torture@cas-stage.invalid",
    GIT_COMMITTER_NAME: "torture",
    GIT_COMMITTER_EMAIL: "torture@cas-stage.invalid",
  };
  const git = (...args) => execFileSync("git", ["-C", repo, ...args], { env, encoding: "utf8" }).trim();
  await mkdir(repo, { recursive: true });
  git("init", "-q", "-b", "main");
  git("config", "gc.auto", "0");
  const shas = [];
  for (let c = 0; c < commits; c++) {
    await writeSourceTree(join(repo, "src"), `commit${c}`, files + (c % 4) * 10);
    await symlink(`src/d0/e0/f0.txt`, join(repo, `link${c}`));
    git("add", "-A");
    git("commit", "-q", "-m", `commit ${c}`);
    shas.push(git("rev-parse", "HEAD"));
  }
  return shas;
}
