// The checkout-index processes must never race on creating one directory: git dies when its mkdir finds
// the directory made by another process. The window is made wide and certain with strace, which delays
// every mkdir by 0.2 s, so each process finds the directory missing before either creates it.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { gitRepo, makeTempDir, removeTempDirs } from "./fixtures.js";

afterEach(removeTempDirs);

const strace = spawnSync("strace", ["-V"]).status === 0;
const why = !strace
  ? "needs strace"
  : availableParallelism() < 2
    ? "needs two cores (one checkout process)"
    : "";
if (why) console.warn(`checkout race test skipped: ${why}`);

describe.skipIf(why !== "")("checkout processes sharing a directory", () => {
  it("never race on creating it, even when every mkdir is slow", () => {
    const repo = gitRepo();
    // Every file in one directory: each checkout process gets a run of it.
    for (let i = 0; i < 700; i++) repo.write(`shared/dir/file${String(i).padStart(4, "0")}.txt`, `${i}\n`);
    const commit = repo.commit("one directory");
    const cacheRoot = makeTempDir("cache");
    const index = fileURLToPath(new URL("../dist/index.js", import.meta.url));
    const script = `
      const { materializeBaseline } = await import(${JSON.stringify(index)});
      const result = await materializeBaseline({ path: process.argv[1], base: process.argv[2], cacheRoot: process.argv[3] });
      console.log(result.dir);`;
    const child = spawnSync(
      "strace",
      [
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=mkdir,mkdirat",
        "-e",
        "inject=mkdir,mkdirat:delay_enter=200000",
        process.execPath,
        "--input-type=module",
        "-e",
        script,
        repo.dir,
        commit,
        cacheRoot,
      ],
      { encoding: "utf8" },
    );
    expect(child.stderr).toBe("");
    expect(child.status).toBe(0);
    expect(readdirSync(join(child.stdout.trim(), "shared", "dir"))).toHaveLength(700);
  });
});
