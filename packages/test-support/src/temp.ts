import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";

const made: string[] = [];

/**
 * A fresh temp directory (mode 0700, from `mkdtemp`), removed with everything in it after the current test.
 * Call it from inside a test or a hook of a file that imports this module.
 */
export async function tempDir(prefix = "cas-test-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true, maxRetries: 3 })));
});
