import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach } from "vitest";

const made: string[] = [];

/** A fresh temp dir, removed after the current test. */
export function tempDir(label = "stage-cache"): string {
  const dir = mkdtempSync(join(tmpdir(), `${label}-`));
  made.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Writes files (`rel` → content, or `[content, mode]`) under `root`, making parent directories. */
export function writeTree(
  root: string,
  files: Record<string, string | Buffer | [string | Buffer, number]>,
): string {
  for (const [rel, spec] of Object.entries(files)) {
    const path = join(root, rel);
    mkdirSync(dirname(path), { recursive: true });
    const [content, mode] = Array.isArray(spec) ? spec : [spec, undefined];
    writeFileSync(path, content);
    if (mode !== undefined) chmodSync(path, mode);
  }
  return root;
}

/**
 * Every regular file under `root` (following nothing), as `rel` → sha256 of content; dirs as `rel/` → "dir".
 * Names are read as bytes (so names that are not UTF-8 are read too) and shown decoded, lossily.
 */
export function readTree(root: string, options: { withModes?: boolean; skipSentinel?: boolean } = {}) {
  const out: Record<string, string> = {};
  const walk = (dir: Buffer, rel: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true, encoding: "buffer" })) {
      const childRel = rel ? `${rel}/${entry.name.toString()}` : entry.name.toString();
      // The sentinel, or the claim an evictor renames it to.
      if (
        options.skipSentinel &&
        (childRel === ".cas-stage-complete" || childRel === ".cas-stage-evicting")
      ) {
        continue;
      }
      const path = Buffer.concat([dir, Buffer.from("/"), entry.name]);
      if (entry.isDirectory()) {
        out[`${childRel}/`] = "dir";
        walk(path, childRel);
      } else if (entry.isFile()) {
        const digest = createHash("sha256").update(readFileSync(path)).digest("hex").slice(0, 16);
        out[childRel] = options.withModes ? `${digest} ${(statSync(path).mode & 0o777).toString(8)}` : digest;
      } else {
        out[childRel] = "other";
      }
    }
  };
  walk(Buffer.from(root), "");
  return out;
}

/** A small nested source tree with a few sizes. */
export function sampleTree(root: string, seed = "x"): string {
  return writeTree(root, {
    "README.md": `# sample ${seed}\n`,
    ".env": `SECRET=${seed}\n`,
    "bin/run.sh": [`#!/bin/sh\necho ${seed}\n`, 0o755],
    "src/a/b/c.txt": `deep ${seed}`,
    "src/big.bin": Buffer.alloc(200_000, seed),
    "src/empty.txt": "",
  });
}

/** An integer from the environment (a replay seed, a run length), or `fallback` when unset. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be an integer >= 0`);
  return value;
}

export { Rng, seedFromEnv } from "@cas-stage/test-support/seed";

/** Resolves once `condition` holds, looking again on every turn of the event loop; for barriers on disk. */
export async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** How many bytes of a file the page cache holds (util-linux `fincore`). */
export function residentBytes(path: string): number {
  const out = execFileSync("fincore", ["--bytes", "--noheadings", "--output", "RES", path], {
    encoding: "utf8",
  });
  return Number(out.trim());
}
