import { spawnSync } from "node:child_process";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { GitCommandError } from "../src/git-process.js";
import { BaselineError, materializeBaseline } from "../src/index.js";
import { gitRepo, makeTempDir, originAndClone, removeTempDirs } from "./fixtures.js";

const saved = { ...process.env };
afterEach(() => {
  for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
  Object.assign(process.env, saved);
  removeTempDirs();
});

/**
 * A clone whose origin is reached over "ssh": GIT_SSH_COMMAND points at a script that records the
 * environment it got and runs git's server side locally, so the fetch works only if the variable reaches
 * git. `feature` exists only on the origin.
 */
function sshOrigin(): { repo: string; feature: string; log: string; ssh: string } {
  const { repo, origin } = originAndClone();
  const other = gitRepo();
  other.git("remote", "add", "origin", origin);
  other.git("fetch", "--quiet", "origin");
  other.git("checkout", "--quiet", "-b", "feature", "origin/main");
  other.write("feature.txt", "only on the origin\n");
  const feature = other.commit("feature");
  other.git("push", "--quiet", "origin", "feature");
  repo.git("remote", "set-url", "origin", `ssh://git.example.invalid${origin}`);
  const log = join(makeTempDir("ssh-log"), "env.log");
  const ssh = join(makeTempDir("ssh"), "fake-ssh");
  // git runs: $GIT_SSH_COMMAND [options] host "git-upload-pack '/path'"; the last argument is the command.
  writeFileSync(
    ssh,
    `#!/bin/sh\necho "prompt=$GIT_TERMINAL_PROMPT" >> "${log}"\nfor last in "$@"; do :; done\nexec sh -c "$last"\n`,
  );
  chmodSync(ssh, 0o755);
  return { repo: repo.dir, feature, log, ssh };
}

describe("the environment git runs with", () => {
  it("keeps GIT_SSH_COMMAND for the fetch of an explicit base, and never lets git prompt", async () => {
    const { repo, feature, log, ssh } = sshOrigin();
    process.env.GIT_SSH_COMMAND = ssh;
    delete process.env.GIT_TERMINAL_PROMPT;
    const result = await materializeBaseline({ path: repo, base: "feature" });
    expect(result).toMatchObject({
      commit: feature,
      source: "explicit base feature (fetched from origin)",
    });
    expect(readFileSync(join(result.dir, "feature.txt"), "utf8")).toBe("only on the origin\n");
    // Every ssh connection git made saw the variable (a fetch may connect more than once).
    expect(new Set(readFileSync(log, "utf8").split("\n").filter(Boolean))).toEqual(new Set(["prompt=0"]));
  });

  it("lets the caller allow prompts with GIT_TERMINAL_PROMPT=1", async () => {
    const { repo, log, ssh } = sshOrigin();
    process.env.GIT_SSH_COMMAND = ssh;
    process.env.GIT_TERMINAL_PROMPT = "1";
    await materializeBaseline({ path: repo, base: "feature" });
    expect(new Set(readFileSync(log, "utf8").split("\n").filter(Boolean))).toEqual(new Set(["prompt=1"]));
  });

  it("reports a fetch that fails as EFETCH with git's message, not as an unknown base", async () => {
    const { repo } = sshOrigin();
    const ssh = join(makeTempDir("ssh"), "refusing-ssh");
    writeFileSync(
      ssh,
      "#!/bin/sh\necho 'ssh: connect to host git.example.invalid port 22: Connection refused' >&2\nexit 255\n",
    );
    chmodSync(ssh, 0o755);
    process.env.GIT_SSH_COMMAND = ssh;
    const error = await materializeBaseline({ path: repo, base: "feature" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BaselineError);
    expect(error).toMatchObject({ code: "EFETCH" });
    expect((error as Error).message).toContain("Connection refused");
    expect((error as Error).message).toContain("ssh://git.example.invalid");
    // The chain keeps git's own error: BaselineError → GitCommandError → simple-git's GitError.
    const cause = (error as Error).cause;
    expect(cause).toBeInstanceOf(GitCommandError);
    expect((cause as Error).cause).toBeInstanceOf(Error);
    expect(((cause as Error).cause as Error).message).toContain("Connection refused");
  });

  it("still calls a base the remote does not have an unknown base", async () => {
    const { repo, ssh } = sshOrigin();
    process.env.GIT_SSH_COMMAND = ssh;
    const error = await materializeBaseline({ path: repo, base: "no-such-branch" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "EUNKNOWNBASE" });
    expect((error as Error).message).toContain("couldn't find remote ref no-such-branch");
  });

  it("ignores variables that would point git at another repository (GIT_DIR, GIT_INDEX_FILE, …)", async () => {
    const { repo, first } = originAndClone();
    const decoy = gitRepo();
    decoy.write("decoy.txt", "wrong repository\n");
    decoy.commit("decoy");
    process.env.GIT_DIR = join(decoy.dir, ".git");
    process.env.GIT_WORK_TREE = decoy.dir;
    process.env.GIT_INDEX_FILE = join(decoy.dir, ".git", "index");
    process.env.GIT_OBJECT_DIRECTORY = join(decoy.dir, ".git", "objects");
    const result = await materializeBaseline({ path: repo.dir });
    expect(result.commit).toBe(first);
    expect(readFileSync(join(result.dir, "src", "app.txt"), "utf8")).toBe("app v1\n");
  });
});

describe("DEBUG", () => {
  it("never makes the library print, and leaves the user's own debug namespaces on", () => {
    const { repo, ssh } = sshOrigin();
    const index = fileURLToPath(new URL("../dist/index.js", import.meta.url));
    const script = `
      import { createRequire } from "node:module";
      const { materializeBaseline } = await import(${JSON.stringify(index)});
      await materializeBaseline({ path: ${JSON.stringify(repo)}, base: "feature" });
      // The same debug module simple-git uses, as an application's own logger.
      const debug = createRequire(import.meta.resolve("simple-git"))("debug");
      debug("myapp")("still here");
    `;
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      env: { ...process.env, DEBUG: "*", GIT_SSH_COMMAND: ssh },
      encoding: "utf8",
    });
    expect(child.status, child.stderr).toBe(0);
    const lines = child.stderr.split("\n").filter(Boolean);
    expect(lines, child.stderr).toHaveLength(1);
    expect(lines[0]).toContain("myapp still here");
  });
});
