// Reading and cutting real git index files: what `git read-tree` writes for a commit's tree, what
// `git update-index` makes of it (version 3 entries, paths of 4,095 bytes or more, an invalidated
// cache-tree), and what `git checkout-index --index` rewrites. Where git cannot be made to write a case
// (an index that ends early, an extension before the cache-tree), a real index is cut or spliced.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BaselineError } from "../src/errors.js";
import {
  checkedOutBytes,
  entryOid,
  entryPath,
  type IndexTree,
  type ParsedIndex,
  parseIndex,
  subIndex,
  treePath,
} from "../src/index-file.js";
import { gitRepo, hashBlob, makeTempDir, removeTempDirs, type TestRepo } from "./fixtures.js";

afterEach(removeTempDirs);

/** The index `git read-tree <commit>` writes in `repo`, after `prepare` (git commands on that index). */
function readTreeIndex(repo: TestRepo, commit: string, prepare: (env: NodeJS.ProcessEnv) => void = () => {}) {
  const file = join(makeTempDir("index"), "index");
  const env = { ...process.env, GIT_INDEX_FILE: file };
  execFileSync("git", ["read-tree", commit], { cwd: repo.dir, env });
  prepare(env);
  return { bytes: readFileSync(file), file, env };
}

/** `git ls-files -s` of the index file `file`, as [mode, oid, path] rows. */
function lsFiles(repo: TestRepo, file: string): [string, string, string][] {
  const out = execFileSync("git", ["ls-files", "-s", "-z"], {
    cwd: repo.dir,
    env: { ...process.env, GIT_INDEX_FILE: file },
  });
  return out
    .toString("latin1")
    .split("\0")
    .filter((line) => line !== "")
    .map((line) => {
      const [meta, path] = line.split("\t") as [string, string];
      const [mode, oid] = meta.split(" ") as [string, string];
      return [mode, oid, path];
    });
}

function entries(index: ParsedIndex): [string, string, string][] {
  return Array.from({ length: index.count }, (_, i) => [
    (index.modes[i] as number).toString(8),
    entryOid(index, i),
    entryPath(index, i).toString("latin1"),
  ]);
}

/** A tree as [path, entry count] pairs, depth first. */
function flatten(tree: IndexTree | undefined): [string, number][] {
  if (tree === undefined) return [];
  return [[treePath(tree), tree.entryCount], ...tree.subtrees.flatMap(flatten)];
}

/** A commit holding files in nested directories, an executable, a symlink and a submodule. */
function richCommit(): { repo: TestRepo; commit: string } {
  const repo = gitRepo();
  repo.write("a.txt", "a\n");
  repo.write("bin/run", "#!/bin/sh\n", 0o755);
  repo.write("src/lib/deep.txt", "deep\n");
  repo.write("src/main.txt", "main\n");
  repo.write("z.txt", "z\n");
  repo.git("add", "--all");
  repo.git("update-index", "--add", "--cacheinfo", `120000,${hashBlob(repo.dir, "a.txt")},link`);
  repo.git("update-index", "--add", "--cacheinfo", `160000,${"a".repeat(40)},sub`);
  repo.git("commit", "--quiet", "-m", "rich");
  return { repo, commit: repo.git("rev-parse", "HEAD") };
}

describe("parseIndex", () => {
  it("reads every entry's mode, id and path, and the cache-tree, of what git read-tree wrote", () => {
    const { repo, commit } = richCommit();
    const { bytes, file } = readTreeIndex(repo, commit);
    const index = parseIndex(bytes, 20);
    expect(index.version).toBe(2);
    expect(entries(index)).toEqual(lsFiles(repo, file));
    expect(entries(index).map(([mode]) => mode)).toEqual(
      expect.arrayContaining(["100644", "100755", "120000", "160000"]),
    );
    // Entries tile the bytes from the header on.
    expect(index.starts[0]).toBe(12);
    for (let i = 1; i < index.count; i++) expect(index.starts[i]).toBe(index.ends[i - 1]);
    expect(flatten(index.trees)).toEqual([
      ["", 7],
      ["bin", 1],
      ["src", 2],
      ["src/lib", 1],
    ]);
  });

  it("reads a SHA-256 repository's index", () => {
    const dir = makeTempDir("repo256");
    execFileSync("git", ["init", "--quiet", "--initial-branch=main", "--object-format=sha256", dir]);
    const repo = gitRepo(dir);
    repo.write("one.txt", "1\n");
    repo.write("d/two.txt", "2\n");
    const commit = repo.commit("sha256");
    const { bytes, file } = readTreeIndex(repo, commit);
    const index = parseIndex(bytes, 32);
    expect(entries(index)).toEqual(lsFiles(repo, file));
    expect(entryOid(index, 0)).toHaveLength(64);
    expect(flatten(index.trees)).toEqual([
      ["", 2],
      ["d", 1],
    ]);
  });

  it("reads version 3 entries, whose extended flags move the path by two bytes", () => {
    const { repo, commit } = richCommit();
    const { bytes, file } = readTreeIndex(repo, commit, (env) =>
      execFileSync("git", ["update-index", "--skip-worktree", "src/main.txt"], { cwd: repo.dir, env }),
    );
    const index = parseIndex(bytes, 20);
    expect(index.version).toBe(3);
    expect(entries(index)).toEqual(lsFiles(repo, file));
  });

  it("reads a path of 4,095 bytes or more, whose length the flags do not hold, and the entry after it", () => {
    const repo = gitRepo();
    repo.write("before.txt", "b\n");
    const blob = repo.git("hash-object", "-w", "before.txt");
    repo.git("add", "before.txt");
    const long = `${"directory/".repeat(500)}file.txt`;
    for (const path of [long, "zz.txt", `${"x".repeat(4095)}`])
      repo.git("update-index", "--add", "--cacheinfo", `100644,${blob},${path}`);
    repo.git("commit", "--quiet", "-m", "long");
    const { bytes, file } = readTreeIndex(repo, "HEAD");
    const index = parseIndex(bytes, 20);
    expect(entries(index)).toEqual(lsFiles(repo, file));
    expect(entries(index).map(([, , path]) => path.length)).toEqual([10, long.length, 4095, 6]);
  });

  it("has no trees when git invalidated the cache-tree, and skips other extensions before it", () => {
    const { repo, commit } = richCommit();
    const blob = repo.git("hash-object", "-w", "a.txt");
    const { bytes } = readTreeIndex(repo, commit, (env) =>
      execFileSync("git", ["update-index", "--add", "--cacheinfo", `100644,${blob},src/new.txt`], {
        cwd: repo.dir,
        env,
      }),
    );
    // git writes -1 for the root and src, whose contents changed; the other trees stay valid.
    expect(bytes.includes(Buffer.from("\0-1 "))).toBe(true);
    expect(parseIndex(bytes, 20).trees).toBeUndefined();

    const sound = readTreeIndex(repo, commit).bytes;
    const parsed = parseIndex(sound, 20);
    const entriesEnd = parsed.ends[parsed.count - 1] as number;
    expect(sound.toString("latin1", entriesEnd, entriesEnd + 4)).toBe("TREE");
    // An optional extension (its signature starts with a capital) that git would skip, put first.
    const other = Buffer.alloc(8 + 5);
    other.write("ZZZZ", 0, "latin1");
    other.writeUInt32BE(5, 4);
    other.write("\0TREE", 8, "latin1");
    const spliced = Buffer.concat([sound.subarray(0, entriesEnd), other, sound.subarray(entriesEnd)]);
    expect(flatten(parseIndex(spliced, 20).trees)).toEqual(flatten(parsed.trees));
    // Without its cache-tree (only the entries and the hash), an index has no trees.
    const bare = Buffer.concat([sound.subarray(0, entriesEnd), Buffer.alloc(20)]);
    expect(parseIndex(bare, 20).trees).toBeUndefined();
    expect(entries(parseIndex(bare, 20))).toEqual(entries(parsed));
  });

  it("refuses an index of another version or no index at all, naming the version", () => {
    const { repo, commit } = richCommit();
    const { bytes } = readTreeIndex(repo, commit, (env) =>
      execFileSync("git", ["update-index", "--index-version", "4"], { cwd: repo.dir, env }),
    );
    expect(() => parseIndex(bytes, 20)).toThrow(
      expect.objectContaining({ code: "EGIT", message: expect.stringContaining("(version 4)") }),
    );
    for (const junk of [Buffer.alloc(0), Buffer.from("DIRC"), Buffer.from("DIRX\0\0\0\x02\0\0\0\0")]) {
      expect(() => parseIndex(junk, 20)).toThrow(
        expect.objectContaining({ code: "EGIT", message: expect.stringContaining("(version 0)") }),
      );
    }
  });

  it("refuses an index cut anywhere before the end of its last entry's hash", () => {
    const repo = gitRepo();
    repo.write("a.txt", "a\n");
    repo.write("b/c.txt", "c\n");
    const blob = repo.git("hash-object", "-w", "a.txt");
    repo.git("add", "--all");
    repo.git("update-index", "--add", "--cacheinfo", `100644,${blob},${"long/".repeat(900)}x`);
    repo.commit("cut");
    const { bytes } = readTreeIndex(repo, "HEAD");
    const parsed = parseIndex(bytes, 20);
    const entriesEnd = parsed.ends[parsed.count - 1] as number;
    // The entries alone and the 20 bytes of a hash: the shortest index git could have written.
    const shortest = Buffer.concat([bytes.subarray(0, entriesEnd), Buffer.alloc(20)]);
    expect(parseIndex(shortest, 20).count).toBe(3);
    for (let length = 12; length < shortest.length; length++) {
      expect(() => parseIndex(shortest.subarray(0, length), 20), `cut at ${length}`).toThrow(
        expect.objectContaining({ code: "EGIT", message: "git read-tree wrote an index that ends early" }),
      );
    }
  });
});

describe("parseIndex's reading of a cache-tree git never writes", () => {
  /** A cache-tree extension of `records` ([name, entry count, subtree count]), each with a made-up id. */
  function cacheTree(records: [string, number | string, number][], size?: number): Buffer {
    const data = Buffer.concat(
      records.map(([name, entries, subtrees]) =>
        Buffer.concat([Buffer.from(`${name}\0${entries} ${subtrees}\n`), Buffer.alloc(20, 0xab)]),
      ),
    );
    const header = Buffer.alloc(8);
    header.write("TREE", 0, "latin1");
    header.writeUInt32BE(size ?? data.length, 4);
    return Buffer.concat([header, data]);
  }

  /** The entries of a real index of `a/b/c.txt`, `a/d.txt` and `e.txt`, then `extension` and a zero hash. */
  function withCacheTree(extension: Buffer, hash = Buffer.alloc(20)): ParsedIndex {
    const repo = gitRepo();
    repo.write("a/b/c.txt", "c\n");
    repo.write("a/d.txt", "d\n");
    repo.write("e.txt", "e\n");
    const { bytes } = readTreeIndex(repo, repo.commit("three"));
    const parsed = parseIndex(bytes, 20);
    const entriesEnd = parsed.ends[parsed.count - 1] as number;
    return parseIndex(Buffer.concat([bytes.subarray(0, entriesEnd), extension, hash]), 20);
  }

  const sound: [string, number, number][] = [
    ["", 3, 1],
    ["a", 2, 1],
    ["b", 1, 0],
  ];

  it("reads one made like git's as git's", () => {
    expect(flatten(withCacheTree(cacheTree(sound)).trees)).toEqual([
      ["", 3],
      ["a", 2],
      ["a/b", 1],
    ]);
    // A size that runs past the index's end: read up to its hash.
    expect(flatten(withCacheTree(cacheTree(sound, 500)).trees)).toHaveLength(3);
    // Counts of several digits.
    expect(flatten(withCacheTree(cacheTree([["", 1234, 0]])).trees)).toEqual([["", 1234]]);
    const twelve: [string, number, number][] = [["", 12, 12]];
    for (let i = 10; i < 22; i++) twelve.push([`d${i}`, 1, 0]);
    expect(flatten(withCacheTree(cacheTree(twelve)).trees)).toHaveLength(13);
  });

  it("has no trees when one is malformed", () => {
    const cases: [string, Buffer][] = [
      [
        "an invalidated subtree",
        cacheTree([
          ["", 3, 1],
          ["a", "-1", 1],
          ["b", 1, 0],
        ]),
      ],
      [
        "more subtrees announced than recorded",
        cacheTree([
          ["", 3, 1],
          ["a", 2, 2],
          ["b", 1, 0],
        ]),
      ],
      [
        "a second root",
        cacheTree([
          ["", 3, 0],
          ["", 3, 0],
        ]),
      ],
      ["a record cut before its id ends", cacheTree(sound).subarray(0, cacheTree(sound).length - 1)],
      ["an extension that ends inside a name", cacheTree(sound, 2)],
    ];
    for (const [label, extension] of cases) {
      expect(withCacheTree(extension).trees, label).toBeUndefined();
    }
    // Cut inside a name, an entry count or a subtree count, with nothing after that could end it (a hash
    // without a NUL, a space or a newline): no runaway read.
    const header = (data: string) => {
      const bytes = Buffer.alloc(8 + data.length);
      bytes.write("TREE", 0, "latin1");
      bytes.writeUInt32BE(data.length, 4);
      bytes.write(data, 8, "latin1");
      return bytes;
    };
    for (const data of ["abc", "\u00003", "\u00003 1"]) {
      expect(withCacheTree(header(data), Buffer.alloc(20, 0xff)).trees, JSON.stringify(data)).toBeUndefined();
    }
  });
});

describe("subIndex", () => {
  it("cuts runs of entries into an index git reads, with a zero hash", () => {
    const { repo, commit } = richCommit();
    const { bytes } = readTreeIndex(repo, commit);
    const index = parseIndex(bytes, 20);
    const picked = [0, 1, 3, 4, 6];
    const cut = subIndex(index, picked);
    expect(cut.subarray(cut.length - 20)).toEqual(Buffer.alloc(20));
    const file = join(makeTempDir("sub"), "index");
    execFileSync("sh", ["-c", 'cat > "$1"', "-", file], { input: cut });
    const all = entries(index);
    expect(lsFiles(repo, file)).toEqual(picked.map((i) => all[i]));
    const reparsed = parseIndex(cut, 20);
    expect(reparsed.version).toBe(2);
    expect(entries(reparsed)).toEqual(picked.map((i) => all[i]));
    expect(subIndex(index, [])).toEqual(
      Buffer.concat([Buffer.from("DIRC\0\0\0\x02\0\0\0\0"), Buffer.alloc(20)]),
    );
  });

  it("keeps the version of a version 3 index", () => {
    const { repo, commit } = richCommit();
    const { bytes } = readTreeIndex(repo, commit, (env) =>
      execFileSync("git", ["update-index", "--skip-worktree", "a.txt"], { cwd: repo.dir, env }),
    );
    const cut = subIndex(parseIndex(bytes, 20), [0, 2]);
    expect(cut.readUInt32BE(4)).toBe(3);
    expect(entries(parseIndex(cut, 20)).map(([, , path]) => path)).toEqual(["a.txt", "link"]);
  });
});

describe("checkedOutBytes", () => {
  /** The index of `commit` after `git checkout-index --index --all` into a fresh directory. */
  function checkedOut(repo: TestRepo, commit: string, skip?: string) {
    const target = makeTempDir("target");
    const { bytes } = readTreeIndex(repo, commit, (env) => {
      if (skip) execFileSync("git", ["update-index", "--skip-worktree", skip], { cwd: repo.dir, env });
      execFileSync("git", ["--work-tree", target, "checkout-index", "--index", "--all"], {
        cwd: repo.dir,
        env,
      });
    });
    return parseIndex(bytes, 20);
  }

  it("sums the sizes git recorded for the files it wrote", () => {
    const repo = gitRepo();
    repo.write("a.txt", "a".repeat(1000));
    repo.write("d/b.txt", "b".repeat(70_000));
    repo.write("empty", "");
    const commit = repo.commit("sizes");
    expect(checkedOutBytes(checkedOut(repo, commit))).toEqual({ bytes: 71_000, unwritten: undefined });
  });

  it("names the first entry git did not write, and only when its stat data is all zero", () => {
    const repo = gitRepo();
    repo.write("a.txt", "aaa");
    repo.write("b.txt", "bbbbbb");
    repo.write("c.txt", "cc");
    const commit = repo.commit("skipped");
    const index = checkedOut(repo, commit, "b.txt");
    expect(checkedOutBytes(index)).toEqual({ bytes: 3, unwritten: 1 });
    // A filesystem without inode numbers (git records 0) still has the file's ctime: written.
    const written = checkedOut(repo, commit);
    written.bytes.writeUInt32BE(0, (written.starts[1] as number) + 20);
    expect(checkedOutBytes(written)).toEqual({ bytes: 11, unwritten: undefined });
    written.bytes.writeUInt32BE(0, written.starts[2] as number);
    expect(checkedOutBytes(written)).toEqual({ bytes: 11, unwritten: undefined });
    written.bytes.writeUInt32BE(0, written.starts[1] as number);
    expect(checkedOutBytes(written)).toEqual({ bytes: 3, unwritten: 1 });
  });
});

describe("parseIndex of a damaged or hostile index", () => {
  // A slot's manifest is an index, and a shared cache's other users can write it.
  it("refuses an index that claims more entries than its bytes can hold, as EGIT, without allocating them", () => {
    const header = Buffer.alloc(12);
    header.write("DIRC", 0, "latin1");
    header.writeUInt32BE(2, 4);
    header.writeUInt32BE(0xffffffff, 8);
    // Four billion entries: their columns alone would take 80 GiB (of address space, which Linux grants).
    const before = process.memoryUsage().arrayBuffers;
    let error: unknown;
    try {
      parseIndex(Buffer.concat([header, Buffer.alloc(220)]), 20);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(BaselineError);
    expect(error).toMatchObject({ code: "EGIT" });
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(2 ** 20);
  });
});
