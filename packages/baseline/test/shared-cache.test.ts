// A cache shared with another user: `nobody` gets hits from root's slots, and a clear error, not a raw
// EACCES, when it would have to write. Needs root (to run a process as nobody); elsewhere it is skipped,
// and says so.
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { kernelDescribe } from "@cas-stage/test-support/kernel";
import { runnableByOthers } from "@cas-stage/test-support/other-users";
import { afterEach, expect, it } from "vitest";
import { materializeBaseline } from "../src/index.js";
import { gitRepo } from "./fixtures.js";
import { WORKERS } from "./processes.js";

function nobody(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    return {
      uid: Number(execFileSync("id", ["-u", "nobody"], { encoding: "utf8" })),
      gid: Number(execFileSync("id", ["-g", "nobody"], { encoding: "utf8" })),
    };
  } catch {
    return undefined;
  }
}
const other = nobody();

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A directory every user can read (the fixtures' temp dirs are private to root). */
function sharedDir(): string {
  const dir = mkdtempSync("/tmp/cas-baseline-shared-");
  chmodSync(dir, 0o755);
  made.push(dir);
  return dir;
}

kernelDescribe("otherUser", "a cache shared with another user", () => {
  it("serves root's slots to nobody as hits, and refuses a build in root's cache with the hint", async () => {
    const shared = sharedDir();
    const repo = gitRepo(join(shared, "repo"));
    repo.write("a.txt", "a\n");
    const cachedCommit = repo.commit("cached");
    repo.write("a.txt", "b\n");
    const uncachedCommit = repo.commit("not cached");
    execFileSync("chmod", ["-R", "a+rX", repo.dir]);
    const cacheRoot = join(shared, "cache");
    await materializeBaseline({ path: repo.dir, base: cachedCommit, cacheRoot });
    // nobody's git must accept a repository owned by root.
    const home = join(shared, "home");
    mkdirSync(home, { mode: 0o755 });
    writeFileSync(join(home, ".gitconfig"), "[safe]\n\tdirectory = *\n");
    // A copy of the worker and the built package that nobody can reach wherever this checkout lies.
    const worker = runnableByOthers(join(WORKERS, "materialize-worker.mjs"));
    const asNobody = (base: string) => {
      const run = spawnSync(process.execPath, [worker, repo.dir, base, cacheRoot], {
        uid: other?.uid,
        gid: other?.gid,
        env: { PATH: process.env.PATH, HOME: home, TMPDIR: "/tmp" },
        encoding: "utf8",
      });
      expect(run.stderr).toBe("");
      return JSON.parse(run.stdout);
    };

    const hit = asNobody(cachedCommit);
    expect(hit.result).toMatchObject({ commit: cachedCommit, cache: "hit" });
    expect(hit.warnings).toEqual([expect.stringContaining("cannot mark entries of another user as used")]);

    const refused = asNobody(uncachedCommit);
    expect(refused.error).toMatchObject({
      name: "BaselineError",
      code: "EACCES",
      path: join(cacheRoot, "baselines"),
    });
    expect(refused.error.message).toMatch(
      /^cannot use the baseline cache in .*: EACCES.*; pass a writable cache dir or set CAS_STAGE_CACHE_DIR$/,
    );

    // Writable staging and trash dirs do not help: publishing renames into baselines/, which is checked
    // before any build (a build that could never be published would be retried several times).
    chmodSync(join(cacheRoot, "baselines", ".staging"), 0o1777);
    chmodSync(join(cacheRoot, "baselines", ".trash"), 0o1777);
    const stillRefused = asNobody(uncachedCommit);
    expect(stillRefused.error).toMatchObject({ code: "EACCES", path: join(cacheRoot, "baselines") });
    expect(readdirSync(join(cacheRoot, "baselines", ".staging"))).toEqual([]);

    // The other way round: slots could be published, but no build can be staged.
    chmodSync(join(cacheRoot, "baselines"), 0o1777);
    chmodSync(join(cacheRoot, "baselines", ".staging"), 0o755);
    const noStaging = asNobody(uncachedCommit);
    expect(noStaging.error).toMatchObject({
      name: "BaselineError",
      code: "EACCES",
      path: join(cacheRoot, "baselines", ".staging"),
    });
    expect(noStaging.error.message).toMatch(/; pass a writable cache dir or set CAS_STAGE_CACHE_DIR$/);
  });
});
