import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";

export { tempDir } from "@cas-stage/test-support/temp";

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
