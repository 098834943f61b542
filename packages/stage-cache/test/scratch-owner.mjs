// A long-lived child process that owns a scratch copy, for scratch.test.ts.
//
//   node scratch-owner.mjs <root> <source>
//
// Opens the cache, makes a scratch copy of <source> and prints { kind: "ready", path }. Then, for each line
// on stdin: "stage" stages <source> again and prints { kind: "staged", path, files } (files: the names at
// the top of the copy, or the error code reading it); "close" closes the cache, prints { kind: "closed" } and
// exits. Runs until told to close, or killed.
import "@cas-stage/test-support/stryker-child";
import { readdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { StageCache } from "../dist/index.js";

const [root, source] = process.argv.slice(2);
const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
const cache = await StageCache.open({ root });
say({ kind: "ready", pid: process.pid, path: await cache.stage(source) });

for await (const command of createInterface({ input: process.stdin })) {
  if (command === "stage") {
    const path = await cache.stage(source);
    let files;
    try {
      files = readdirSync(path).sort();
    } catch (error) {
      files = error.code;
    }
    say({ kind: "staged", path, files });
  } else if (command === "close") {
    await cache.close();
    say({ kind: "closed" });
    process.exit(0);
  }
}
