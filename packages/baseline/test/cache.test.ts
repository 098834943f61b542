import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { StageError } from "@cas-stage/cas";
import { afterEach, describe, expect, it } from "vitest";
import { materializeBaseline, pruneBaselines } from "../src/index.js";
import { makeTempDir, originAndClone, removeTempDirs } from "./fixtures.js";

afterEach(removeTempDirs);

const DAY = 24 * 60 * 60 * 1000;

describe("cache slots", () => {
  it("builds the slot <cacheRoot>/baselines/<commit>, persistent", async () => {
    const { repo, first } = originAndClone();
    const cacheRoot = makeTempDir("cache");
    const result = await materializeBaseline({ path: repo.dir, cacheRoot });
    expect(result).toMatchObject({
      dir: join(cacheRoot, "baselines", first),
      pathOrig: join(cacheRoot, "baselines", first),
      persistent: true,
      cache: "built",
    });
    expect(readdirSync(join(cacheRoot, "baselines"))).toEqual([first]);
  });

  it("returns an existing slot as a hit, without reading any object, and touches its mtime", async () => {
    const { repo } = originAndClone();
    const cacheRoot = makeTempDir("cache");
    const built = await materializeBaseline({ path: repo.dir, cacheRoot });
    // A stamp proves the second call reused the slot rather than rebuilding it.
    writeFileSync(join(built.dir, "stamp"), "reused");
    const old = new Date(Date.now() - 10 * DAY);
    utimesSync(built.dir, old, old);
    // With the blobs gone from the repository, only a call that reads no blob can succeed.
    for (const line of repo.git("rev-list", "--objects", "--all").split("\n")) {
      const oid = line.split(" ")[0] as string;
      if (repo.git("cat-file", "-t", oid) !== "blob") continue;
      rmSync(join(repo.dir, ".git", "objects", oid.slice(0, 2), oid.slice(2)));
    }
    await expect(materializeBaseline({ path: repo.dir })).rejects.toThrow();

    const hit = await materializeBaseline({ path: repo.dir, cacheRoot });
    expect(hit).toMatchObject({ dir: built.dir, commit: built.commit, cache: "hit", persistent: true });
    expect(readFileSync(join(hit.dir, "stamp"), "utf8")).toBe("reused");
    expect(statSync(hit.dir).mtimeMs).toBeGreaterThan(old.getTime());
  });

  it("reports a slot that cannot be finalized with the 'baseline finalize' prefix, leaving no temp dir", async () => {
    const { repo, first } = originAndClone();
    const cacheRoot = makeTempDir("cache");
    mkdirSync(join(cacheRoot, "baselines"));
    writeFileSync(join(cacheRoot, "baselines", first), "a file squatting on the slot");
    const error = await materializeBaseline({ path: repo.dir, cacheRoot }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(StageError);
    expect((error as StageError).message).toMatch(/^baseline finalize: /);
    expect(readdirSync(join(cacheRoot, "baselines"))).toEqual([first]);
  });
});

describe("pruneBaselines", () => {
  it("removes slots unused for olderThanMs, trash and stale temps, and keeps the rest", async () => {
    const { repo, first } = originAndClone();
    const cacheRoot = makeTempDir("cache");
    const baselines = join(cacheRoot, "baselines");
    const old = await materializeBaseline({ path: repo.dir, cacheRoot });
    repo.write("src/app.txt", "v2\n");
    const second = repo.commit("second");
    const fresh = await materializeBaseline({ path: repo.dir, cacheRoot, base: second });

    const longAgo = new Date(Date.now() - 30 * DAY);
    utimesSync(old.dir, longAgo, longAgo);
    const staleTemp = join(baselines, `${first}.tmp.abcDEF`);
    mkdirSync(staleTemp);
    writeFileSync(join(staleTemp, "partial"), "x");
    utimesSync(staleTemp, longAgo, longAgo);
    const trash = join(baselines, `${first}.trash.0123456789abcdef`);
    mkdirSync(trash);
    const unrelated = join(baselines, "not-a-slot");
    mkdirSync(unrelated);
    utimesSync(unrelated, longAgo, longAgo);

    const removed = await pruneBaselines(cacheRoot, { olderThanMs: 7 * DAY });
    expect(removed.sort()).toEqual([old.dir, staleTemp, trash].sort());
    expect(readdirSync(baselines).sort()).toEqual([second, "not-a-slot"].sort());
    expect(fresh.dir).toBe(join(baselines, second));

    // A pruned slot is simply built again.
    expect((await materializeBaseline({ path: repo.dir, cacheRoot })).cache).toBe("built");
  });

  it("keeps a slot that a hit touched, and returns [] for a missing cache", async () => {
    const { repo } = originAndClone();
    const cacheRoot = makeTempDir("cache");
    const built = await materializeBaseline({ path: repo.dir, cacheRoot });
    const longAgo = new Date(Date.now() - 30 * DAY);
    utimesSync(built.dir, longAgo, longAgo);
    await materializeBaseline({ path: repo.dir, cacheRoot });
    expect(await pruneBaselines(cacheRoot, { olderThanMs: 7 * DAY })).toEqual([]);
    expect(await pruneBaselines(join(cacheRoot, "missing"), { olderThanMs: 0 })).toEqual([]);
    await expect(pruneBaselines(cacheRoot, { olderThanMs: -1 })).rejects.toBeInstanceOf(RangeError);
  });
});
