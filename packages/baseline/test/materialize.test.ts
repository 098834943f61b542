import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BaselineError, materializeBaseline } from "../src/index.js";
import {
  cacheNames,
  commitTree,
  gitBytes,
  gitRepo,
  hashBlob,
  listTree,
  makeTempDir,
  originAndClone,
  rawTree,
  removeTempDirs,
  testTmpDir,
} from "./fixtures.js";

afterEach(removeTempDirs);

/** Temp dirs the library made under the OS temp dir (mkdtemp adds six characters). */
function libraryTempDirs(): string[] {
  return readdirSync(testTmpDir).filter((name) => /^cas-baseline-(?:fetch-)?[A-Za-z0-9]{6}$/.test(name));
}

function blobBytes(cwd: string, rev: string, path: string): Buffer {
  return gitBytes(cwd, ["cat-file", "blob", `${rev}:${path}`]);
}

describe("writing the tree", () => {
  it("writes exact blob bytes despite .gitattributes filters, eol, ident and export attributes", async () => {
    const { repo } = originAndClone();
    repo.git("config", "filter.upper.smudge", "tr a-z A-Z");
    repo.git("config", "filter.upper.clean", "cat");
    repo.write(
      ".gitattributes",
      [
        "*.txt text eol=crlf",
        "*.up filter=upper",
        "ignored.txt export-ignore",
        "subst.txt export-subst",
        "*.id ident",
        "",
      ].join("\n"),
    );
    repo.write("lines.txt", "one\ntwo\n");
    repo.write("shout.up", "quiet words\n");
    repo.write("ignored.txt", "still here\n");
    repo.write("subst.txt", "$Format:%H$\n");
    repo.write("file.id", "$Id$\n");
    const binary = randomBytes(4096);
    repo.write("data.bin", binary);
    const commit = repo.commit("attributes");

    const result = await materializeBaseline({ path: repo.dir, base: commit });
    for (const path of [
      "lines.txt",
      "shout.up",
      "ignored.txt",
      "subst.txt",
      "file.id",
      "data.bin",
      ".gitattributes",
    ]) {
      expect(readFileSync(join(result.dir, path)), path).toEqual(blobBytes(repo.dir, commit, path));
    }
    expect(readFileSync(join(result.dir, "lines.txt"), "utf8")).toBe("one\ntwo\n");
    expect(readFileSync(join(result.dir, "shout.up"), "utf8")).toBe("quiet words\n");
    expect(readFileSync(join(result.dir, "subst.txt"), "utf8")).toBe("$Format:%H$\n");
    expect(readFileSync(join(result.dir, "file.id"), "utf8")).toBe("$Id$\n");
    expect(readFileSync(join(result.dir, "data.bin"))).toEqual(binary);
  });

  it("writes exact blob bytes whatever the tree's attributes and the user's global config ask for", async () => {
    const { repo } = originAndClone();
    // The user's global configuration: eol conversion everywhere, and a git-lfs filter that rewrites.
    const globalConfig = join(process.env.HOME as string, ".gitconfig");
    writeFileSync(
      globalConfig,
      [
        "[core]",
        "\tautocrlf = true",
        "\teol = crlf",
        '[filter "lfs"]',
        "\tsmudge = sed s/a/LFS/g",
        "\tclean = cat",
        "\trequired = true",
        "",
      ].join("\n"),
    );
    try {
      const attributes = [
        "*.crlf text eol=crlf",
        "*.auto text=auto",
        "*.utf16 text working-tree-encoding=UTF-16",
        "*.id ident",
        "*.lfs filter=lfs diff=lfs merge=lfs -text",
        "",
      ].join("\n");
      const contents: Record<string, string> = {
        ".gitattributes": attributes,
        "lines.crlf": "one\ntwo\n",
        "guess.auto": "alpha\nbeta\n",
        "wide.utf16": "a text in utf-8\n",
        "stamp.id": "$Id$\n",
        "object.lfs": "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 3\n",
      };
      // Blobs made without any filter, so their bytes are exactly these.
      const root = rawTree(
        repo.dir,
        Object.entries(contents)
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([name, text]) => ({ mode: "100644", name, oid: hashBlob(repo.dir, text) })),
      );
      const commit = commitTree(repo.dir, root);

      const result = await materializeBaseline({
        path: repo.dir,
        base: commit,
        cacheRoot: makeTempDir("cache"),
      });
      for (const [name, text] of Object.entries(contents)) {
        expect(readFileSync(join(result.dir, name), "utf8"), name).toBe(text);
      }

      // The same tree checked out by git as a user would get it is altered: the test is not vacuous.
      const peer = makeTempDir("peer");
      const env = { ...process.env, GIT_INDEX_FILE: join(peer, "index") };
      execFileSync("git", ["read-tree", commit], { cwd: repo.dir, env });
      execFileSync("git", ["checkout-index", "--all", `--prefix=${peer}/out/`], { cwd: repo.dir, env });
      expect(readFileSync(join(peer, "out", "lines.crlf"), "utf8")).toBe("one\r\ntwo\r\n");
      expect(readFileSync(join(peer, "out", "object.lfs"), "utf8")).toContain("LFS");
      expect(readFileSync(join(peer, "out", "stamp.id"), "utf8")).not.toBe("$Id$\n");
    } finally {
      rmSync(globalConfig, { force: true });
    }
  });

  it("runs no program that the user's git configuration names (an fsmonitor hook)", async () => {
    const { repo } = originAndClone();
    const marker = join(makeTempDir("hook"), "ran");
    const hook = join(makeTempDir("hook"), "fsmonitor.sh");
    writeFileSync(hook, `#!/bin/sh\necho "$@" >> "${marker}"\n`, { mode: 0o755 });
    const globalConfig = join(process.env.HOME as string, ".gitconfig");
    writeFileSync(globalConfig, `[core]\n\tfsmonitor = ${hook}\n`);
    try {
      const result = await materializeBaseline({ path: repo.dir, cacheRoot: makeTempDir("cache") });
      expect(readFileSync(join(result.dir, "src", "app.txt"), "utf8")).toBe("app v1\n");
      expect(existsSync(marker)).toBe(false);
    } finally {
      rmSync(globalConfig, { force: true });
    }
  });

  it("streams blobs larger than memory buffers byte for byte", async () => {
    const { repo } = originAndClone();
    const big = randomBytes(3 * 1024 * 1024 + 17);
    repo.write("big/blob.bin", big);
    const commit = repo.commit("big");
    const result = await materializeBaseline({ path: repo.dir, base: commit });
    expect(readFileSync(join(result.dir, "big", "blob.bin")).equals(big)).toBe(true);
  });

  it("keeps the executable bit and makes symlinks real with their exact target", async () => {
    const { repo } = originAndClone();
    repo.write("bin/run.sh", "#!/bin/sh\necho hi\n", 0o755);
    repo.write("plain.txt", "plain\n", 0o644);
    repo.write("dangling-target-is-kept", "x\n");
    const commit = repo.commit("modes");
    const linkTree = rawTree(repo.dir, [
      { mode: "120000", name: "abs-link", oid: hashBlob(repo.dir, "/definitely/not/here") },
      { mode: "40000", name: "bin", oid: repo.git("rev-parse", `${commit}:bin`) },
      { mode: "120000", name: "rel-link", oid: hashBlob(repo.dir, "bin/run.sh") },
      { mode: "100644", name: "plain.txt", oid: repo.git("rev-parse", `${commit}:plain.txt`) },
    ]);
    const result = await materializeBaseline({ path: repo.dir, base: commitTree(repo.dir, linkTree) });
    expect(statSync(join(result.dir, "bin", "run.sh")).mode & 0o111).not.toBe(0);
    expect(statSync(join(result.dir, "plain.txt")).mode & 0o111).toBe(0);
    expect(lstatSync(join(result.dir, "rel-link")).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(result.dir, "rel-link"))).toBe("bin/run.sh");
    expect(readlinkSync(join(result.dir, "abs-link"))).toBe("/definitely/not/here");
  });

  it("skips submodules and reports each to onSubmodule", async () => {
    const { repo } = originAndClone();
    repo.write("keep.txt", "keep\n");
    repo.commit("keep");
    // A gitlink without a checked-out submodule: committed straight from the index.
    repo.git("update-index", "--add", "--cacheinfo", `160000,${"a".repeat(40)},vendor/lib`);
    repo.git("commit", "--quiet", "-m", "submodule");
    const commit = repo.git("rev-parse", "HEAD");
    const reported: string[] = [];
    const result = await materializeBaseline({
      path: repo.dir,
      base: commit,
      onSubmodule: (p) => reported.push(p),
    });
    expect(reported).toEqual(["vendor/lib"]);
    expect(listTree(result.dir)).not.toContain("vendor/");
  });

  it("warns through process.emitWarning about a skipped submodule by default", async () => {
    const { repo } = originAndClone();
    repo.git("update-index", "--add", "--cacheinfo", `160000,${"b".repeat(40)},sub`);
    repo.git("commit", "--quiet", "-m", "submodule");
    const commit = repo.git("rev-parse", "HEAD");
    const warnings: Error[] = [];
    const listener = (warning: Error) => warnings.push(warning);
    process.on("warning", listener);
    try {
      await materializeBaseline({ path: repo.dir, base: commit });
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off("warning", listener);
    }
    expect(warnings.map((w) => w.message)).toContain("submodule sub is not materialized in the baseline");
  });

  it("creates no empty directories, and an empty .git marker directory at the root", async () => {
    const { repo } = originAndClone();
    const emptyTree = gitBytes(repo.dir, ["hash-object", "-w", "-t", "tree", "--stdin"], "")
      .toString()
      .trim();
    const file = hashBlob(repo.dir, "f\n");
    const nested = rawTree(repo.dir, [{ mode: "40000", name: "hollow", oid: emptyTree }]);
    const root = rawTree(repo.dir, [
      { mode: "40000", name: "empty", oid: emptyTree },
      { mode: "100644", name: "file", oid: file },
      { mode: "40000", name: "outer", oid: nested },
    ]);
    const result = await materializeBaseline({ path: repo.dir, base: commitTree(repo.dir, root) });
    expect(listTree(result.dir)).toEqual([".git/", "file"]);
    expect(lstatSync(join(result.dir, ".git")).isDirectory()).toBe(true);
    expect(readdirSync(join(result.dir, ".git"))).toEqual([]);
  });

  it("keeps names that are not UTF-8 as exact bytes", async () => {
    const repo = gitRepo();
    const name = Buffer.from([0x6e, 0x61, 0xef, 0x76, 0x65, 0x2e, 0x74, 0x78, 0x74]); // "na\xefve.txt"
    writeFileSync(Buffer.concat([Buffer.from(`${repo.dir}/`), name]), "latin-1 name\n");
    const commit = repo.commit("latin-1");
    const result = await materializeBaseline({ path: repo.dir, base: commit });
    const names = readdirSync(result.dir, { encoding: "buffer" });
    expect(names.some((entry) => entry.equals(name))).toBe(true);
  });

  it("maps the path to pathOrig inside the tree", async () => {
    const { repo } = originAndClone();
    repo.write("pkg/deep/file.txt", "x\n");
    const commit = repo.commit("deep");
    const result = await materializeBaseline({ path: join(repo.dir, "pkg", "deep"), base: commit });
    expect(result.pathOrig).toBe(join(result.dir, "pkg", "deep"));
    expect(readFileSync(join(result.pathOrig, "file.txt"), "utf8")).toBe("x\n");
  });
});

describe("temp directories", () => {
  it("puts an uncached baseline in a fresh temp dir, not persistent", async () => {
    const { repo } = originAndClone();
    const result = await materializeBaseline({ path: repo.dir });
    expect(result).toMatchObject({ persistent: false, cache: "temp" });
    expect(result.dir.startsWith(testTmpDir)).toBe(true);
    expect(readFileSync(join(result.dir, "src", "app.txt"), "utf8")).toBe("app v1\n");
    rmSync(result.dir, { recursive: true });
  });

  it("removes the temp dir when writing fails", async () => {
    const { repo } = originAndClone();
    const bad = rawTree(repo.dir, [{ mode: "100644", name: "..", oid: hashBlob(repo.dir, "x") }]);
    const before = libraryTempDirs();
    await expect(
      materializeBaseline({ path: repo.dir, base: commitTree(repo.dir, bad) }),
    ).rejects.toBeInstanceOf(BaselineError);
    expect(libraryTempDirs()).toEqual(before);
  });

  it("stops on abort and leaves nothing behind", async () => {
    const { repo } = originAndClone();
    for (let i = 0; i < 50; i++) repo.write(`many/${i}.txt`, `${i}\n`);
    const commit = repo.commit("many");
    const cacheRoot = makeTempDir("cache");
    const before = libraryTempDirs();
    for (const options of [{}, { cacheRoot }]) {
      const controller = new AbortController();
      const reason = new Error("stop now");
      const outcome = materializeBaseline({
        path: repo.dir,
        base: commit,
        signal: controller.signal,
        onProgress: () => controller.abort(reason),
        ...options,
      });
      await expect(outcome).rejects.toBe(reason);
    }
    expect(libraryTempDirs()).toEqual(before);
    expect(cacheNames(cacheRoot)).toEqual([]);
  });

  it("reports progress as files written out of the total, rising to the total", async () => {
    const { repo } = originAndClone();
    for (let i = 0; i < 600; i++) repo.write(`many/${i}.txt`, `${i}\n`);
    symlinkSync("many/0.txt", join(repo.dir, "link"));
    const commit = repo.commit("many");
    const calls: [number, number][] = [];
    await materializeBaseline({
      path: repo.dir,
      base: commit,
      onProgress: (written, total) => calls.push([written, total]),
    });
    // Files are reported as git's batches complete, then each symlink: more than one call, rising, ending
    // at the total.
    const total = 603;
    expect(calls.length).toBeGreaterThan(1);
    expect(calls.every(([, t]) => t === total)).toBe(true);
    expect(calls.map(([written]) => written)).toEqual(
      [...calls.map(([written]) => written)].sort((a, b) => a - b),
    );
    expect(calls.at(-1)).toEqual([total, total]);
  });
});
