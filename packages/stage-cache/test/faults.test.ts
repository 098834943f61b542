// An unreadable file among many, with the kernel's own EACCES rather than a mock: root reads anything, so
// the stages run in a child process (on the built package) that drops to the unprivileged user nobody.
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { tempDir, writeTree } from "./fixtures.js";

interface Outcome {
  code?: string;
  name?: string;
  path?: string;
  message: string;
}

/**
 * In a child process, stages `source` with a fingerprint and then as a scratch copy, and reports how each
 * failed. As root, the child drops to nobody first (only the test's own temp dirs are opened up for it).
 */
function stageBoth(source: string, root: string): { fingerprinted: Outcome; scratch: Outcome } {
  const asRoot = process.getuid?.() === 0;
  if (asRoot) for (const dir of [source, dirname(root)]) chmodSync(dir, 0o777);
  const entry = pathToFileURL(join(import.meta.dirname, "..", "dist", "index.js")).href;
  const script = `
    const { StageCache } = await import(${JSON.stringify(entry)});
    if (${asRoot}) { process.setgid(65534); process.setuid(65534); }
    const cache = await StageCache.open({ root: ${JSON.stringify(root)} });
    const outcome = async (run) => {
      try { await run(); return { message: "staged" }; }
      catch (e) { return { code: e.code, name: e.name, path: e.path, message: e.message }; }
    };
    const fingerprinted = await outcome(() => cache.stage(${JSON.stringify(source)}, "unreadable"));
    const scratch = await outcome(() => cache.stage(${JSON.stringify(source)}));
    await cache.close();
    console.log(JSON.stringify({ fingerprinted, scratch }));`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  return JSON.parse(out) as { fingerprinted: Outcome; scratch: Outcome };
}

describe("an unreadable file", () => {
  it("fails the stage with EACCES, naming the file and what to do, and leaves nothing behind", async () => {
    const files: Record<string, string | [string, number]> = { "unreadable.txt": ["secret", 0o000] };
    for (let i = 0; i < 200; i++) files[`d${i % 10}/f${i}.txt`] = `file ${i}`;
    const source = writeTree(tempDir("src"), files);
    const root = join(tempDir("root"), "cache");
    const { fingerprinted, scratch } = stageBoth(source, root);

    expect(fingerprinted).toMatchObject({
      code: "EACCES",
      name: "StageCacheError",
      path: join(source, "unreadable.txt"),
    });
    expect(fingerprinted.message).toMatch(/cannot copy .*unreadable\.txt: .*make the file readable/);
    expect(existsSync(join(root, "un"))).toBe(false);
    expect(readdirSync(join(root, ".staging"))).toEqual([]);

    expect(scratch).toMatchObject({ code: "EACCES" });
    expect(readdirSync(join(root, ".scratch"))).toEqual([]);
  });
});
