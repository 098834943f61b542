import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterEach } from "vitest";

const made: string[] = [];

/** A fresh temp directory, removed after the current test. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cas-test-"));
  made.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Every file under `root` as `relative path -> content`, directories implied. */
export async function readTree(root: string): Promise<Record<string, string>> {
  const tree: Record<string, string> = {};
  for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    tree[relative(root, path)] = await readFile(path, "utf8");
  }
  return tree;
}

/** Names directly inside `dir` that have the temp-dir form `*.tmp.XXXXXX`. */
export async function tempsIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => /\.tmp\.[A-Za-z0-9]{6}$/.test(name));
}
