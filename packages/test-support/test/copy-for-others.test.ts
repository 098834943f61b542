// CopyForOtherUsers: a worker of a checkout that only its owner may enter still runs as nobody, from the copy,
// with every module it loads; and the copy goes where other users can reach it.
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CopyForOtherUsers } from "../src/copy-for-others.mjs";
import { kernelTest, nobody } from "../src/kernel.js";
import { tempDir } from "../src/temp.js";

const copies: CopyForOtherUsers[] = [];
afterEach(() => {
  for (const copy of copies.splice(0)) copy.remove();
});

function makeCopy(): CopyForOtherUsers {
  const copy = new CopyForOtherUsers();
  copies.push(copy);
  return copy;
}

/** Writes `files` under `root` as a user with umask 077 would: files 0600, directories 0700. */
function writePrivate(root: string, files: Record<string, string>): void {
  for (const [rel, content] of Object.entries(files)) {
    const path = join(root, rel);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, content, { mode: 0o600 });
  }
}

function link(root: string, at: string, target: string): void {
  mkdirSync(dirname(join(root, at)), { recursive: true, mode: 0o700 });
  symlinkSync(target, join(root, at));
}

const json = (value: object) => JSON.stringify(value);

/**
 * A checkout in a directory only its owner may enter, laid out as pnpm lays out a workspace: the package
 * `lib` ships dist/ (loading a module of it lazily) and depends on `dep`, installed in node_modules/.pnpm and
 * reached by relative links, which depends on `dep2` the same way; `lib`'s worker imports lib's dist by
 * relative path, a sibling helper, and the workspace package `other` (no `files` list) by name.
 */
async function privateCheckout(): Promise<string> {
  const root = await tempDir("checkout-");
  const store = "node_modules/.pnpm";
  writePrivate(root, {
    "package.json": json({ name: "root", private: true, type: "module" }),
    [`${store}/dep@1.0.0/node_modules/dep/package.json`]: json({
      name: "dep",
      type: "module",
      exports: "./index.js",
      dependencies: { dep2: "1.0.0" },
    }),
    [`${store}/dep@1.0.0/node_modules/dep/index.js`]: `import { dep2 } from "dep2";\nexport const dep = \`dep+\${dep2}\`;\n`,
    [`${store}/dep2@1.0.0/node_modules/dep2/package.json`]: json({
      name: "dep2",
      type: "module",
      exports: "./index.js",
    }),
    [`${store}/dep2@1.0.0/node_modules/dep2/index.js`]: `export const dep2 = "dep2";\n`,
    "packages/lib/package.json": json({
      name: "lib",
      type: "module",
      files: ["dist"],
      dependencies: { dep: "1.0.0" },
    }),
    "packages/lib/dist/index.js": `import { dep } from "dep";\nexport const lib = async () => \`lib+\${dep}+\${(await import("./lazy.js")).lazy}\`;\n`,
    "packages/lib/dist/lazy.js": `export const lazy = "lazy";\n`,
    "packages/lib/notes.txt": "not shipped",
    "packages/lib/test/helper.mjs": `export const helper = "helper";\n`,
    "packages/lib/test/worker.mjs": [
      "// A worker, as the tests have them.",
      'import { helper } from "./helper.mjs";',
      'import { lib } from "../dist/index.js";',
      'import { other } from "other/thing";',
      "process.stdout.write(JSON.stringify({ uid: process.getuid(), lib: await lib(), helper, other }));",
      "",
    ].join("\n"),
    "packages/other/package.json": json({
      name: "other",
      type: "module",
      exports: { "./thing": "./src/thing.mjs" },
    }),
    "packages/other/src/thing.mjs": `export const other = "other";\n`,
  });
  link(root, `${store}/dep@1.0.0/node_modules/dep2`, "../../dep2@1.0.0/node_modules/dep2");
  link(root, "packages/lib/node_modules/dep", `../../../${store}/dep@1.0.0/node_modules/dep`);
  link(root, "packages/lib/node_modules/other", "../../other");
  chmodSync(root, 0o700);
  return root;
}

function runAsNobody(script: string) {
  return spawnSync(process.execPath, [script], { ...nobody, encoding: "utf8" });
}

describe("a copy for other users", () => {
  kernelTest(
    "otherUser",
    "runs, as nobody, a worker of a checkout nobody cannot enter, with every module it loads",
    async () => {
      const worker = join(await privateCheckout(), "packages", "lib", "test", "worker.mjs");
      const unreachable = runAsNobody(worker);
      expect(unreachable.status).not.toBe(0);
      expect(unreachable.stderr).toContain("Cannot find module");

      // Made under a private umask, as a user with one would run the tests: the copy is still open to all.
      const umask = process.umask(0o077);
      let copied: string;
      let copy: CopyForOtherUsers;
      try {
        copy = makeCopy();
        copied = copy.add(worker);
      } finally {
        process.umask(umask);
      }
      expect(copied).toBe(join(copy.root, worker));
      const run = runAsNobody(copied);
      expect(run.stderr).toBe("");
      expect(JSON.parse(run.stdout)).toEqual({
        uid: nobody.uid,
        lib: "lib+dep+dep2+lazy",
        helper: "helper",
        other: "other",
      });
      // A package is copied as it ships, no more.
      expect(existsSync(join(copy.root, dirname(dirname(worker)), "notes.txt"))).toBe(false);
    },
  );

  it("adds each package once, and leaves nothing behind once removed", async () => {
    const checkout = await privateCheckout();
    const copy = new CopyForOtherUsers();
    const worker = join(checkout, "packages", "lib", "test", "worker.mjs");
    expect(copy.add(worker)).toBe(copy.add(worker));
    expect(copy.add(join(checkout, "packages", "lib", "dist", "index.js"))).toBe(
      join(copy.root, checkout, "packages", "lib", "dist", "index.js"),
    );
    expect(statSync(copy.root).mode & 0o777).toBe(0o755);
    copy.remove();
    expect(existsSync(copy.root)).toBe(false);
  });

  it("names the script and the import it cannot find", async () => {
    const checkout = await privateCheckout();
    const worker = join(checkout, "worker.mjs");
    writeFileSync(worker, 'import { gone } from "./gone.mjs";\n');
    const copy = makeCopy();
    expect(() => copy.add(worker)).toThrow(`${worker} imports ./gone.mjs, and ${join(checkout, "gone.mjs")}`);
    const needsPackage = join(checkout, "needs.mjs");
    writeFileSync(needsPackage, 'import "absent/sub";\n');
    expect(() => copy.add(needsPackage)).toThrow(`${needsPackage} needs the package absent`);
  });

  it("goes to /tmp when other users cannot reach TMPDIR", async () => {
    const privateTmp = await tempDir("private-tmp-");
    const before = process.env.TMPDIR;
    process.env.TMPDIR = privateTmp;
    try {
      expect(tmpdir()).toBe(privateTmp);
      const copy = makeCopy();
      expect(dirname(copy.root)).toBe("/tmp");
      expect(readdirSync(privateTmp)).toEqual([]);
    } finally {
      if (before === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = before;
    }
  });
});
