// Issue 8.1: two concurrent prunes must never put back a half-deleted slot that a later call serves as a hit.
// The windows are widened with strace on real processes: the first pruner's renames return 1.5 s late (it
// stalls between its move to the trash and its look back), the second process's unlinks start late.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { kernelDescribe } from "@cas-stage/test-support/kernel";
import { afterEach, expect, it } from "vitest";
import { materializeBaseline } from "../src/index.js";
import { gitRepo, makeTempDir, removeTempDirs } from "./fixtures.js";
import { runNode, WORKERS, waitUntil } from "./processes.js";

afterEach(removeTempDirs);

const PRUNER = join(WORKERS, "prune-worker.mjs");
const FILES = 2000;

kernelDescribe("strace", "concurrent prunes (issue 8.1)", () => {
  // [who deletes, its arguments, its delay before each unlink in µs: long enough to still be deleting when
  // the stalled pruner looks back]
  const variants: [string, string[], number][] = [
    ["another prune", [JSON.stringify({ olderThanMs: 0 }), "prune"], 10_000],
    // A zero-age clean deletes trash at once, also the stalled pruner's: that pruner must then not restore.
    ["a zero-age clean", [JSON.stringify({ staleAfterMs: 0 }), "clean"], 3_000],
  ];
  for (const [label, args, unlinkDelay] of variants) {
    it(`a prune stalled between its move to the trash and its look back, while ${label} deletes, never puts back a partial slot`, async () => {
      const repo = gitRepo();
      // Files at the top level, so that the second process's deletions change the trash directory's mtime.
      for (let i = 0; i < FILES; i++) repo.write(`f${i}.txt`, `file ${i}\n`);
      const commit = repo.commit("2,000 files");
      const cacheRoot = makeTempDir("cache");
      const built = await materializeBaseline({ path: repo.dir, base: commit, cacheRoot });

      const stalled = runNode(PRUNER, [cacheRoot, JSON.stringify({ olderThanMs: 0 })], {
        strace: ["-e", "inject=rename,renameat,renameat2:delay_exit=1500000"],
      });
      // The first pruner has moved the slot away and now waits 1.5 s for its rename to return.
      await waitUntil(() => !existsSync(built.dir), "the first pruner moved the slot away");
      const deleting = runNode(PRUNER, [cacheRoot, ...args], {
        strace: ["-e", `inject=unlink,unlinkat:delay_enter=${unlinkDelay}`],
      });
      const [first, second] = await Promise.all([stalled, deleting]);

      const after = await materializeBaseline({ path: repo.dir, base: commit, cacheRoot });
      const names = readdirSync(after.dir).filter((name) => name !== ".git");
      expect({ cache: after.cache, files: names.length }).toEqual({ cache: after.cache, files: FILES });
      const wrong = names.filter(
        (name) => readFileSync(join(after.dir, name), "utf8") !== `file ${name.slice(1, -4)}\n`,
      );
      expect(wrong).toEqual([]);
      expect(first).toMatchObject({ code: 0 });
      expect(second).toMatchObject({ code: 0 });
    });
  }
});
