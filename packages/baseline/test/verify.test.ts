import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { materializeBaseline, verifyBaselines } from "../src/index.js";
import { MANIFEST, SENTINEL, trashDir } from "../src/layout.js";
import { openStore } from "../src/store.js";
import { verifyWith } from "../src/verify.js";
import { gitRepo, makeTempDir, removeTempDirs, type TestRepo } from "./fixtures.js";

afterEach(removeTempDirs);

/** A repository holding every kind of entry a baseline writes, including a name that is not UTF-8. */
function richRepo(objectFormat?: "sha256"): { repo: TestRepo; commit: string } {
  const dir = makeTempDir("repo");
  if (objectFormat) {
    execFileSync("git", ["init", "--quiet", "--initial-branch=main", `--object-format=${objectFormat}`, dir]);
  }
  const repo = gitRepo(dir);
  repo.write("README.md", "readme\n");
  repo.write("src/app.txt", "app v1\n");
  repo.write("src/deep/nested/file.txt", "deep\n");
  repo.write("bin/tool.sh", "#!/bin/sh\necho tool\n", 0o755);
  repo.write("big.bin", Buffer.alloc(3 << 20, 7));
  symlinkSync("src/app.txt", join(dir, "link"));
  writeFileSync(Buffer.from(`${dir}/latin1-\xe9.txt`, "latin1"), "not utf-8 name\n");
  return { repo, commit: repo.commit("rich") };
}

async function cached(repo: TestRepo, commit: string): Promise<{ cacheRoot: string; slot: string }> {
  const cacheRoot = makeTempDir("cache");
  const { dir } = await materializeBaseline({ path: repo.dir, base: commit, cacheRoot });
  return { cacheRoot, slot: dir };
}

describe("verifyBaselines", () => {
  it("finds a fresh cache whole, against the manifest and against git", async () => {
    const { repo, commit } = richRepo();
    const { cacheRoot, slot } = await cached(repo, commit);
    const byManifest = await verifyBaselines(cacheRoot);
    expect(byManifest.slots).toEqual([
      expect.objectContaining({ commit, path: slot, status: "ok", against: "manifest" }),
    ]);
    expect(byManifest).toMatchObject({ bad: 0, fixed: 0 });
    expect(byManifest.checkedBytes).toBe(byManifest.slots[0]?.bytes);
    const byGit = await verifyBaselines(cacheRoot, { repo: repo.dir });
    expect(byGit.slots).toEqual([expect.objectContaining({ status: "ok", against: "git" })]);
  });

  it("finds a slot whole whose commit holds a submodule, which the build skips, against the manifest and git", async () => {
    const { repo } = richRepo();
    // A gitlink to a commit this repository does not hold, as a submodule records it.
    repo.git("update-index", "--add", "--cacheinfo", `160000,${"5".repeat(40)},vendor/lib`);
    repo.git("commit", "--quiet", "-m", "submodule");
    const commit = repo.git("rev-parse", "HEAD");
    const cacheRoot = makeTempDir("cache");
    const { dir } = await materializeBaseline({
      path: repo.dir,
      base: commit,
      cacheRoot,
      onSubmodule: () => {},
    });
    expect(existsSync(join(dir, "vendor/lib"))).toBe(false);
    expect((await verifyBaselines(cacheRoot)).slots).toEqual([
      expect.objectContaining({ status: "ok", against: "manifest" }),
    ]);
    expect((await verifyBaselines(cacheRoot, { repo: repo.dir })).slots).toEqual([
      expect.objectContaining({ status: "ok", against: "git" }),
    ]);
  });

  const tamperings: [string, (slot: string) => void, object][] = [
    [
      "changed bytes of the same size",
      (slot) => writeFileSync(join(slot, "src/app.txt"), "app v2\n"),
      { path: "src/app.txt", kind: "content", expected: expect.stringMatching(/^[0-9a-f]{40}$/) },
    ],
    [
      "a truncated file",
      (slot) => truncateSync(join(slot, "big.bin"), 1000),
      { path: "big.bin", kind: "content", expected: expect.stringMatching(/^[0-9a-f]{40}$/) },
    ],
    [
      "a missing file",
      (slot) => unlinkSync(join(slot, "src/deep/nested/file.txt")),
      { path: "src/deep/nested/file.txt", kind: "missing" },
    ],
    [
      "an extra file",
      (slot) => writeFileSync(join(slot, "src/deep/new.txt"), "new"),
      { path: "src/deep/new.txt", kind: "extra" },
    ],
    [
      "an extra empty directory",
      (slot) => mkdirSync(join(slot, "empty")),
      { path: "empty", kind: "extra", found: "040000" },
    ],
    [
      "an executable bit set",
      (slot) => chmodSync(join(slot, "README.md"), 0o755),
      { path: "README.md", kind: "mode", expected: "100644", found: "100755" },
    ],
    [
      "an executable bit cleared",
      (slot) => chmodSync(join(slot, "bin/tool.sh"), 0o644),
      { path: "bin/tool.sh", kind: "mode", expected: "100755", found: "100644" },
    ],
    [
      "a symlink pointing elsewhere",
      (slot) => {
        unlinkSync(join(slot, "link"));
        symlinkSync("README.md", join(slot, "link"));
      },
      { path: "link", kind: "content" },
    ],
    [
      "a file replaced by a symlink to identical content",
      (slot) => {
        unlinkSync(join(slot, "README.md"));
        symlinkSync("src/app.txt", join(slot, "README.md"));
      },
      { path: "README.md", kind: "mode", expected: "100644", found: "120000" },
    ],
    [
      "a changed file whose name is not UTF-8",
      (slot) => writeFileSync(Buffer.from(`${slot}/latin1-\xe9.txt`, "latin1"), "changed\n"),
      { path: "latin1-\ufffd.txt", kind: "content" },
    ],
    [
      "two differences: the first in git's order is reported",
      (slot) => {
        writeFileSync(join(slot, "src/app.txt"), "changed");
        unlinkSync(join(slot, "bin/tool.sh"));
      },
      { path: "bin/tool.sh", kind: "missing" },
    ],
  ];

  for (const [label, tamper, difference] of tamperings) {
    it(`reports ${label} with its path, against the manifest and against git`, async () => {
      const { repo, commit } = richRepo();
      const { cacheRoot, slot } = await cached(repo, commit);
      tamper(slot);
      for (const options of [{}, { repo: repo.dir }]) {
        const report = await verifyBaselines(cacheRoot, options);
        expect(report.bad).toBe(1);
        expect(report.slots[0]).toMatchObject({ status: "bad", difference });
      }
    });
  }

  it("ignores the .git marker, and checks the sentinel's commit and the manifest", async () => {
    const { repo, commit } = richRepo();
    const { cacheRoot, slot } = await cached(repo, commit);
    writeFileSync(join(slot, ".git", "someone-elses-file"), "x");
    expect((await verifyBaselines(cacheRoot)).bad).toBe(0);

    rmSync(join(slot, MANIFEST));
    expect((await verifyBaselines(cacheRoot)).slots[0]).toMatchObject({
      status: "bad",
      difference: { path: MANIFEST, kind: "missing" },
    });
    expect((await verifyBaselines(cacheRoot, { repo: repo.dir })).slots[0]).toMatchObject({
      status: "ok",
      against: "git",
    });

    writeFileSync(join(slot, MANIFEST), "garbage");
    expect((await verifyBaselines(cacheRoot)).slots[0]).toMatchObject({
      difference: { path: MANIFEST, kind: "content" },
    });

    writeFileSync(
      join(slot, SENTINEL),
      JSON.stringify({ format: 1, commit: "f".repeat(40), files: 1, bytes: 1 }),
    );
    expect((await verifyBaselines(cacheRoot, { repo: repo.dir })).slots[0]).toMatchObject({
      status: "bad",
      difference: { path: SENTINEL, kind: "content", expected: commit, found: "f".repeat(40) },
    });
  });

  it("falls back to the manifest for a commit the given repository does not hold, and says so", async () => {
    const { repo, commit } = richRepo();
    const { cacheRoot } = await cached(repo, commit);
    const other = gitRepo();
    other.write("x", "x");
    other.commit("unrelated");
    const warnings: string[] = [];
    const report = await verifyBaselines(cacheRoot, {
      repo: other.dir,
      onWarning: (message) => warnings.push(message),
    });
    expect(report.slots[0]).toMatchObject({ status: "ok", against: "manifest" });
    expect(warnings).toEqual([expect.stringContaining(`${commit} cannot be read from ${other.dir}`)]);
  });

  it("with fix moves a bad slot aside through the eviction path, so the next call rebuilds it", async () => {
    const { repo, commit } = richRepo();
    const { cacheRoot, slot } = await cached(repo, commit);
    writeFileSync(join(slot, "src/app.txt"), "tampered");
    const report = await verifyBaselines(cacheRoot, { fix: true });
    expect(report).toMatchObject({ bad: 1, fixed: 1 });
    expect(report.slots[0]).toMatchObject({ status: "bad", fixed: true });
    expect(existsSync(slot)).toBe(false);
    expect(readdirSync(trashDir(cacheRoot))).toEqual([]);
    expect((await materializeBaseline({ path: repo.dir, base: commit, cacheRoot })).cache).toBe("built");
    expect((await verifyBaselines(cacheRoot, { fix: true })).bad).toBe(0);
  });

  it("reports a slot replaced while being checked as gone, and leaves the replacement alone", async () => {
    const { repo, commit } = richRepo();
    const { cacheRoot, slot } = await cached(repo, commit);
    unlinkSync(join(slot, "README.md"));
    const store = openStore(cacheRoot);
    const report = await verifyWith(
      store,
      cacheRoot,
      { fix: true },
      {
        // Another process evicts the slot it saw torn, and a run builds it again.
        afterCompare: async (path) => {
          await store.evict(path, 0, { force: true });
          await materializeBaseline({ path: repo.dir, base: commit, cacheRoot });
        },
      },
    );
    expect(report).toMatchObject({ bad: 0, fixed: 0 });
    expect(report.slots[0]).toMatchObject({ status: "gone" });
    expect(existsSync(join(slot, "README.md"))).toBe(true);
    expect((await verifyBaselines(cacheRoot)).bad).toBe(0);
  });

  it("checks the slots of a SHA-256 repository with SHA-256 blob ids", async () => {
    const { repo, commit } = richRepo("sha256");
    expect(commit).toHaveLength(64);
    const { cacheRoot, slot } = await cached(repo, commit);
    expect((await verifyBaselines(cacheRoot, { repo: repo.dir })).slots[0]).toMatchObject({
      status: "ok",
      against: "git",
    });
    expect((await verifyBaselines(cacheRoot)).slots[0]).toMatchObject({ status: "ok", against: "manifest" });
    writeFileSync(join(slot, "src/app.txt"), "app v2\n");
    expect((await verifyBaselines(cacheRoot)).slots[0]).toMatchObject({
      status: "bad",
      difference: {
        path: "src/app.txt",
        kind: "content",
        expected: repo.git("rev-parse", `${commit}:src/app.txt`),
      },
    });
  });

  it("gives an empty report for a missing cache", async () => {
    expect(await verifyBaselines(join(makeTempDir("cache"), "missing"))).toEqual({
      slots: [],
      bad: 0,
      fixed: 0,
      checkedBytes: 0,
    });
  });
});
