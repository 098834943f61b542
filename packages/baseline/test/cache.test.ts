import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BaselineError, materializeBaseline } from "../src/index.js";
import { MANIFEST, SENTINEL } from "../src/layout.js";
import { decodeManifest } from "../src/manifest.js";
import { cacheNames, listTree, makeTempDir, originAndClone, removeTempDirs, setLastUse } from "./fixtures.js";

afterEach(removeTempDirs);

const DAY = 24 * 60 * 60 * 1000;

describe("cache slots", () => {
  it("builds the slot <cacheRoot>/baselines/<commit>, persistent, with its sentinel and manifest in the .git marker", async () => {
    const { repo, first } = originAndClone();
    const cacheRoot = makeTempDir("cache");
    const result = await materializeBaseline({ path: repo.dir, cacheRoot });
    expect(result).toMatchObject({
      dir: join(cacheRoot, "baselines", first),
      pathOrig: join(cacheRoot, "baselines", first),
      persistent: true,
      cache: "built",
    });
    expect(cacheNames(cacheRoot)).toEqual([first]);
    expect(listTree(result.dir)).toEqual([
      ".git/",
      ".git/cas-baseline.complete",
      ".git/cas-baseline.manifest",
      "README.md",
      "src/",
      "src/app.txt",
    ]);
    // The sentinel records what a size cap and a listing need without walking the slot.
    expect(JSON.parse(readFileSync(join(result.dir, SENTINEL), "utf8"))).toEqual({
      format: 1,
      commit: first,
      files: 2,
      bytes: "first\n".length + "app v1\n".length,
    });
    const manifest = decodeManifest(readFileSync(join(result.dir, MANIFEST)));
    expect(manifest?.commit).toBe(first);
    expect(manifest?.entries.map((e) => [e.mode, e.oid, e.path.toString()])).toEqual([
      ["100644", repo.git("rev-parse", `${first}:README.md`), "README.md"],
      ["100644", repo.git("rev-parse", `${first}:src/app.txt`), "src/app.txt"],
    ]);
  });

  it("returns an existing slot as a hit, without reading any object, and touches its sentinel", async () => {
    const { repo } = originAndClone();
    const cacheRoot = makeTempDir("cache");
    const built = await materializeBaseline({ path: repo.dir, cacheRoot });
    // A stamp proves the second call reused the slot rather than rebuilding it.
    writeFileSync(join(built.dir, "stamp"), "reused");
    const old = new Date(Date.now() - 10 * DAY);
    setLastUse(built.dir, old);
    // With the blobs gone from the repository, only a call that reads no blob can succeed.
    for (const line of repo.git("rev-list", "--objects", "--all").split("\n")) {
      const oid = line.split(" ")[0] as string;
      if (repo.git("cat-file", "-t", oid) !== "blob") continue;
      rmSync(join(repo.dir, ".git", "objects", oid.slice(0, 2), oid.slice(2)));
    }
    await expect(materializeBaseline({ path: repo.dir })).rejects.toMatchObject({
      name: "BaselineError",
      code: "EGIT",
    });

    const hit = await materializeBaseline({ path: repo.dir, cacheRoot });
    expect(hit).toMatchObject({ dir: built.dir, commit: built.commit, cache: "hit", persistent: true });
    expect(readFileSync(join(hit.dir, "stamp"), "utf8")).toBe("reused");
    expect(lstatSync(join(hit.dir, SENTINEL)).mtimeMs).toBeGreaterThan(old.getTime());
  });

  it("moves aside a slot without a sentinel (as 0.1.0 left them) and rebuilds it once", async () => {
    const { repo, first } = originAndClone();
    const cacheRoot = makeTempDir("cache");
    const slot = join(cacheRoot, "baselines", first);
    // A 0.1.0 slot: the tree and an empty .git marker, no sentinel; here missing a file, as a torn one would.
    mkdirSync(join(slot, ".git"), { recursive: true });
    writeFileSync(join(slot, "README.md"), "first\n");
    const warnings: string[] = [];
    let builds = 0;
    const result = await materializeBaseline({
      path: repo.dir,
      cacheRoot,
      onWarning: (message, path) => warnings.push(`${message}: ${path}`),
      // The last report of a build is (total, total).
      onProgress: (written, total) => {
        if (written === total) builds++;
      },
    });
    expect(result.cache).toBe("built");
    // Once: the old slot went before the build, not after a build that lost to it.
    expect(builds).toBe(1);
    expect(readFileSync(join(slot, "src", "app.txt"), "utf8")).toBe("app v1\n");
    expect(warnings).toEqual([`removed an incomplete entry left by another writer: ${slot}`]);
    expect(cacheNames(cacheRoot)).toEqual([first]);
    expect((await materializeBaseline({ path: repo.dir, cacheRoot })).cache).toBe("hit");
  });

  it("moves aside a file squatting on the slot and builds the slot", async () => {
    const { repo, first } = originAndClone();
    const cacheRoot = makeTempDir("cache");
    mkdirSync(join(cacheRoot, "baselines"));
    writeFileSync(join(cacheRoot, "baselines", first), "a file squatting on the slot");
    const result = await materializeBaseline({ path: repo.dir, cacheRoot });
    expect(result.cache).toBe("built");
    expect(readdirSync(result.dir).sort()).toEqual([".git", "README.md", "src"]);
    expect(cacheNames(cacheRoot)).toEqual([first]);
  });

  it("reports a cache dir that cannot be created as a BaselineError with the filesystem's code and a hint", async () => {
    const { repo } = originAndClone();
    const parent = makeTempDir("cache");
    const cacheRoot = join(parent, "a-file", "cache");
    writeFileSync(join(parent, "a-file"), "not a directory");
    const error = await materializeBaseline({ path: repo.dir, cacheRoot }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BaselineError);
    expect(error).toMatchObject({ code: "ENOTDIR" });
    expect((error as BaselineError).path).toContain(cacheRoot);
    expect((error as Error).message).toMatch(
      /^cannot use the baseline cache in .*: ENOTDIR.*; pass a writable cache dir or set CAS_STAGE_CACHE_DIR$/,
    );
    expect(readdirSync(parent)).toEqual(["a-file"]);
  });

  it("rejects with the very abort reason, even one that looks like a filesystem error", async () => {
    const { repo } = originAndClone();
    const cacheRoot = makeTempDir("cache");
    const controller = new AbortController();
    const reason = Object.assign(new Error("cancelled by the user"), { code: "ECANCELED" });
    const outcome = materializeBaseline({
      path: repo.dir,
      cacheRoot,
      signal: controller.signal,
      onProgress: () => controller.abort(reason),
    });
    await expect(outcome).rejects.toBe(reason);
    expect(cacheNames(cacheRoot)).toEqual([]);
  });
});
