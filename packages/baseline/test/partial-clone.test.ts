import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BaselineError, materializeBaseline } from "../src/index.js";
import {
  cacheNames,
  git,
  gitRepo,
  listTree,
  makeTempDir,
  removeTempDirs,
  snapshotFiles,
  testTmpDir,
} from "./fixtures.js";

afterEach(removeTempDirs);

const FILES = 120;

/**
 * A "server" repository that serves partial clones (as GitHub does), holding two commits that differ in
 * every file, and a blobless clone of it over file://, which has the blobs of the second commit only.
 * Every fetch from it, by anyone with the clone's configuration, runs the clone's `uploadpack` wrapper,
 * which logs one line into `fetchLog`: a count that no environment variable can hide.
 */
function bloblessClone(filter = "blob:none"): {
  server: string;
  clone: string;
  first: string;
  second: string;
  fetchLog: string;
} {
  const server = join(makeTempDir("server"), "server.git");
  execFileSync("git", ["init", "--quiet", "--bare", "--initial-branch=main", server]);
  git(server, "config", "uploadpack.allowFilter", "true");
  git(server, "config", "uploadpack.allowAnySHA1InWant", "true");
  const seed = gitRepo();
  for (let i = 0; i < FILES; i++) seed.write(`dir${i % 7}/file${i}.txt`, `first version of ${i}\n`);
  seed.write("bin/run.sh", "#!/bin/sh\necho first\n", 0o755);
  const first = seed.commit("first");
  for (let i = 0; i < FILES; i++) seed.write(`dir${i % 7}/file${i}.txt`, `second version of ${i}\n`);
  const second = seed.commit("second");
  seed.git("push", "--quiet", server, "main");
  const clone = join(makeTempDir("clone"), "clone");
  git(makeTempDir("cwd"), "clone", "--quiet", `--filter=${filter}`, `file://${server}`, clone);
  // gc, maintenance and the like must be provoked, not prevented, to prove that nothing runs them.
  git(clone, "config", "gc.auto", "1");
  git(clone, "config", "maintenance.auto", "true");
  const fetchLog = join(makeTempDir("fetches"), "log");
  const wrapper = join(makeTempDir("upload-pack"), "upload-pack");
  writeFileSync(wrapper, `#!/bin/sh\necho fetch >> "${fetchLog}"\nexec git-upload-pack "$@"\n`, {
    mode: 0o755,
  });
  git(clone, "config", "remote.origin.uploadpack", wrapper);
  return { server, clone, first, second, fetchLog };
}

function fetchesIn(log: string): number {
  return existsSync(log) ? readFileSync(log, "utf8").split("\n").filter(Boolean).length : 0;
}

/** The git commands that ran, from a GIT_TRACE2_EVENT file: one name per process. */
function commandsIn(traceFile: string): string[] {
  if (!existsSync(traceFile)) return [];
  return readFileSync(traceFile, "utf8")
    .split("\n")
    .filter((line) => line.includes('"event":"cmd_name"'))
    .map((line) => (JSON.parse(line) as { name: string }).name);
}

/** Runs `work` with GIT_TRACE2_EVENT set, so every git process (and child) logs into a fresh file. */
async function traced<T>(work: () => Promise<T>): Promise<{ result: T; commands: string[] }> {
  const traceFile = join(makeTempDir("trace"), "trace.json");
  process.env.GIT_TRACE2_EVENT = traceFile;
  try {
    const result = await work();
    return { result, commands: commandsIn(traceFile) };
  } finally {
    delete process.env.GIT_TRACE2_EVENT;
  }
}

function missingObjects(repo: string, commit: string): number {
  return git(repo, "rev-list", "--objects", "--missing=print", commit)
    .split("\n")
    .filter((line) => line.startsWith("?")).length;
}

describe("a blobless partial clone", () => {
  it("fetches the missing blobs in one fetch, runs no gc or maintenance, and leaves the repository byte for byte unchanged", async () => {
    const { clone, first, fetchLog } = bloblessClone();
    expect(missingObjects(clone, first)).toBe(FILES);
    const before = snapshotFiles(clone);
    const cacheRoot = makeTempDir("cache");

    const { result, commands } = await traced(() =>
      materializeBaseline({ path: clone, base: first, cacheRoot }),
    );

    expect(fetchesIn(fetchLog)).toBe(1);
    expect(commands.filter((name) => name === "fetch")).toHaveLength(1);
    expect(commands).not.toContain("gc");
    expect(commands).not.toContain("maintenance");
    expect(readFileSync(join(result.dir, "dir3", "file3.txt"), "utf8")).toBe("first version of 3\n");
    expect(readFileSync(join(result.dir, "bin", "run.sh"), "utf8")).toBe("#!/bin/sh\necho first\n");
    expect(listTree(result.dir).filter((path) => path.endsWith(".txt"))).toHaveLength(FILES);
    expect(snapshotFiles(clone)).toEqual(before);
    // The user's repository still lacks the blobs: they went into the cache's own repository.
    expect(missingObjects(clone, first)).toBe(FILES);
    // The marker holds only the cache's own records: nothing of the private repository git wrote through.
    expect(readdirSync(join(result.dir, ".git")).sort()).toEqual([
      "cas-baseline.complete",
      "cas-baseline.manifest",
    ]);
  });

  it("fetches the trees of a treeless clone in one more fetch, and still changes nothing in it", async () => {
    const { clone, first, fetchLog } = bloblessClone("tree:0");
    const before = snapshotFiles(clone);
    const { result, commands } = await traced(() =>
      materializeBaseline({ path: clone, base: first, cacheRoot: makeTempDir("cache") }),
    );
    expect(fetchesIn(fetchLog)).toBe(2);
    expect(commands).not.toContain("gc");
    expect(commands).not.toContain("maintenance");
    expect(readFileSync(join(result.dir, "dir3", "file3.txt"), "utf8")).toBe("first version of 3\n");
    expect(listTree(result.dir).filter((path) => path.endsWith(".txt"))).toHaveLength(FILES);
    expect(snapshotFiles(clone)).toEqual(before);
  });

  it("fetches nothing when the clone already has every blob of the tree", async () => {
    const { clone, second, fetchLog } = bloblessClone();
    const { result, commands } = await traced(() =>
      materializeBaseline({ path: clone, base: second, cacheRoot: makeTempDir("cache") }),
    );
    expect(fetchesIn(fetchLog)).toBe(0);
    expect(commands).not.toContain("fetch");
    expect(readFileSync(join(result.dir, "dir0", "file0.txt"), "utf8")).toBe("second version of 0\n");
  });

  it("says how many objects are missing and from which remote when the remote is unreachable, leaving nothing behind", async () => {
    const { server, clone, first } = bloblessClone();
    renameSync(server, `${server}.gone`);
    const before = snapshotFiles(clone);
    const cacheRoot = makeTempDir("cache");
    const tempBefore = readdirSync(testTmpDir);

    const error = await materializeBaseline({ path: clone, base: first, cacheRoot }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(BaselineError);
    expect(error).toMatchObject({ code: "EFETCH" });
    const message = (error as Error).message;
    expect(message).toContain(`lacks ${FILES} objects`);
    expect(message).toContain(`remote origin (file://${server})`);
    expect(cacheNames(cacheRoot)).toEqual([]);
    expect(readdirSync(testTmpDir)).toEqual(tempBefore);
    expect(snapshotFiles(clone)).toEqual(before);
  });
});
