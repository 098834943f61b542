// An entry swapped between the walk's listing and its reading must never make a copy or a fingerprint
// read what lies outside the source root. Each window is reached deterministically through the walk's
// test-only `onStep` hook, with both lookup strategies; then a real attacker process swaps in a tight
// loop while stages and fingerprints run.
import { type ChildProcess, spawn } from "node:child_process";
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { copyTree } from "../src/copy.js";
import { digestTree } from "../src/fingerprint.js";
import { fingerprintTree, StageCache } from "../src/index.js";
import { procLookupWorks } from "../src/tree-reader.js";
import { type WalkOptions, walkTree } from "../src/walk.js";
import { readTree, tempDir, writeTree } from "./fixtures.js";

const SECRET = "TOPSECRET";

/** Whether any regular file below `dir` holds the secret. */
function holdsSecret(dir: string): boolean {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && holdsSecret(path)) return true;
    if (entry.isFile() && readFileSync(path, "utf8").includes(SECRET)) return true;
  }
  return false;
}

/** Names of files that exist both in a swapped directory and, holding the secret, behind its symlink. */
const MANY = Array.from({ length: 20 }, (_, i) => `f${i}`);
const manyFiles = (dir: string) => Object.fromEntries(MANY.map((name) => [`${dir}/${name}`, "public"]));

/** A source tree and, outside it, a secret file and a directory holding a secret `f`. */
function scene(files: Record<string, string>) {
  const base = tempDir("scene");
  const source = writeTree(join(base, "src"), files);
  const secrets: Record<string, string> = { "secret.txt": SECRET };
  for (const name of ["f", ...MANY]) secrets[`dir/${name}`] = SECRET;
  const outside = writeTree(join(base, "outside"), secrets);
  const spare = join(base, "spare");
  mkdirSync(spare);
  return { source, secretFile: join(outside, "secret.txt"), secretDir: join(outside, "dir"), spare };
}

const lookups = procLookupWorks() ? (["proc", "path"] as const) : (["path"] as const);

describe.each(lookups)("an entry swapped between listing and opening (%s lookups)", (lookup) => {
  /** Runs `swap` once, the first time the walk is about to open `rel` at `step`. */
  function hookAt(source: string, rel: string, swap: () => void, step = "entry"): WalkOptions {
    let swapped = false;
    return {
      lookup,
      onStep: (path, at) => {
        if (swapped || at !== step || path !== join(source, rel)) return;
        swapped = true;
        swap();
      },
    };
  }

  it("a file swapped for a symlink to a secret is skipped with a warning by copy and fingerprint", async () => {
    const { source, secretFile } = scene({ f: "public", "other.txt": "other" });
    const swapToLink = () => {
      unlinkSync(join(source, "f"));
      symlinkSync(secretFile, join(source, "f"));
    };
    const withoutF = writeTree(tempDir("expected"), { "other.txt": "other" });

    const warnings: string[] = [];
    const target = tempDir("copy");
    await copyTree(source, target, {
      ...hookAt(source, "f", swapToLink),
      onWarning: (message) => warnings.push(message),
    });
    expect(readTree(target)).toEqual(readTree(withoutF));
    expect(warnings).toEqual([expect.stringMatching(/^skipped symlink f: its target .* is outside/)]);

    writeFileSync(join(source, "f.tmp"), "public");
    renameSync(join(source, "f.tmp"), join(source, "f"));
    const digest = await digestTree(source, hookAt(source, "f", swapToLink));
    expect(digest).toBe(await fingerprintTree(withoutF));
  });

  it("a directory swapped for a symlink to an outside directory is not descended by copy or fingerprint", async () => {
    const { source, secretDir, spare } = scene({ "d/f": "public", "other.txt": "other" });
    const swapDir = () => {
      renameSync(join(source, "d"), join(spare, "d"));
      symlinkSync(secretDir, join(source, "d"));
    };
    const restore = () => {
      unlinkSync(join(source, "d"));
      renameSync(join(spare, "d"), join(source, "d"));
    };
    const withoutD = writeTree(tempDir("expected"), { "other.txt": "other" });

    const target = tempDir("copy");
    await copyTree(source, target, hookAt(source, "d", swapDir));
    expect(holdsSecret(target)).toBe(false);
    expect(readTree(target)).toEqual(readTree(withoutD));

    restore();
    expect(await digestTree(source, hookAt(source, "d", swapDir))).toBe(await fingerprintTree(withoutD));
  });

  it("a directory swapped while its entries are being opened never leads outside", async () => {
    const { source, secretDir, spare } = scene({ "d/f": "public", "d/g": "public too" });
    const original = await fingerprintTree(source);
    const swapParent = () => {
      renameSync(join(source, "d"), join(spare, "d"));
      symlinkSync(secretDir, join(source, "d"));
    };
    const restore = () => {
      unlinkSync(join(source, "d"));
      renameSync(join(spare, "d"), join(source, "d"));
    };

    const target = tempDir("copy");
    const copied = await copyTree(source, target, hookAt(source, "d/f", swapParent)).catch((e: unknown) => e);
    expect(holdsSecret(target)).toBe(false);
    if (lookup === "proc") {
      // Every lookup goes through the descriptor of `d` opened before the swap: the real `d` is read.
      expect(copied).not.toBeInstanceOf(Error);
      expect(readFileSync(join(target, "d", "f"), "utf8")).toBe("public");
    } else {
      // By path, the swap is seen by the identity checks around the open: the walk refuses to go on.
      expect(copied).toMatchObject({ name: "StageCacheError", code: "ESOURCECHANGED" });
    }

    restore();
    const hashed = await digestTree(source, hookAt(source, "d/f", swapParent)).catch((e: unknown) => e);
    if (lookup === "proc") expect(hashed).toBe(original);
    else expect(hashed).toMatchObject({ code: "ESOURCECHANGED" });
  });

  it("a directory swapped between its opening and its listing is not listed through the swap", async () => {
    const { source, secretDir, spare } = scene({ "d/f": "public", "d/g": "public too" });
    const read: string[] = [];
    const walked = await walkTree(
      source,
      {
        action: "read",
        dir: (rel) => {
          if (rel.toString() !== "d") return;
          renameSync(join(source, "d"), join(spare, "d"));
          symlinkSync(secretDir, join(source, "d"));
        },
        file: (file, done) => {
          read.push(readFileSync(file.fd, "utf8"));
          done();
        },
      },
      { lookup },
    ).catch((e: unknown) => e);
    expect(read.join()).not.toContain(SECRET);
    if (lookup === "proc") expect(read.sort()).toEqual(["public", "public too"]);
    else expect(walked).toMatchObject({ code: "ESOURCECHANGED" });
  });

  it("a directory swapped for an entry's open and restored right after is caught by path lookups", async () => {
    const { source, secretDir, spare } = scene({ "d/f": "public" });
    const target = tempDir("copy");
    const copied = await copyTree(source, target, {
      lookup,
      onStep: (path, step) => {
        if (path !== join(source, "d/f")) return;
        if (step === "entry") {
          renameSync(join(source, "d"), join(spare, "d"));
          symlinkSync(secretDir, join(source, "d"));
        } else if (step === "entry-opened") {
          unlinkSync(join(source, "d"));
          renameSync(join(spare, "d"), join(source, "d"));
        }
      },
    }).catch((e: unknown) => e);
    expect(holdsSecret(target)).toBe(false);
    // By path, the open went through the swap; the entry's path then leads to another file than the one
    // opened. Through the directory's descriptor, the swap did not matter.
    if (lookup === "path") expect(copied).toMatchObject({ code: "ESOURCECHANGED" });
    else expect(readFileSync(join(target, "d/f"), "utf8")).toBe("public");
  });

  it("an entry replaced right after its open is the opened one, or refused by path lookups", async () => {
    const { source } = scene({ f: "opened", g: "other" });
    const target = tempDir("copy");
    const copied = await copyTree(source, target, {
      lookup,
      onStep: (path, step) => {
        if (path !== join(source, "f") || step !== "entry-opened") return;
        writeFileSync(join(source, "f.new"), "replacement");
        renameSync(join(source, "f.new"), join(source, "f"));
      },
    }).catch((e: unknown) => e);
    if (lookup === "path") expect(copied).toMatchObject({ code: "ESOURCECHANGED" });
    else expect(readFileSync(join(target, "f"), "utf8")).toBe("opened");
  });

  it("a followed symlink's target directory swapped for its open and restored is never read", async () => {
    const { source, secretDir, spare } = scene({ ".hidden/f": "public" });
    symlinkSync(".hidden/f", join(source, "link"));
    const warnings: string[] = [];
    const target = tempDir("copy");
    const copied = await copyTree(source, target, {
      lookup,
      onWarning: (message) => warnings.push(message),
      onStep: (path, step) => {
        if (path !== join(source, "link")) return;
        if (step === "link-target") {
          renameSync(join(source, ".hidden"), join(spare, "hidden"));
          symlinkSync(secretDir, join(source, ".hidden"));
        } else if (step === "link-target-opened") {
          unlinkSync(join(source, ".hidden"));
          renameSync(join(spare, "hidden"), join(source, ".hidden"));
        }
      },
    }).catch((e: unknown) => e);
    expect(holdsSecret(target)).toBe(false);
    if (lookup === "path") expect(copied).toMatchObject({ code: "ESOURCECHANGED" });
    else
      expect(warnings).toEqual([
        expect.stringMatching(/^skipped symlink link: its target .*\/dir\/f is outside/),
      ]);
  });

  it("a followed symlink's target directory swapped for a symlink to a secret after resolution is not read", async () => {
    const { source, secretDir, spare } = scene({ ".hidden/f": "public" });
    symlinkSync(".hidden/f", join(source, "link"));
    const warnings: string[] = [];
    const target = tempDir("copy");
    const copied = await copyTree(source, target, {
      lookup,
      onWarning: (message) => warnings.push(message),
      onStep: (path, step) => {
        if (path !== join(source, "link") || step !== "link-target") return;
        renameSync(join(source, ".hidden"), join(spare, "hidden"));
        symlinkSync(secretDir, join(source, ".hidden"));
      },
    }).catch((e: unknown) => e);
    expect(holdsSecret(target)).toBe(false);
    if (lookup === "path") expect(copied).toMatchObject({ code: "ESOURCECHANGED" });
    else
      expect(warnings).toEqual([
        expect.stringMatching(/^skipped symlink link: its target .*\/dir\/f is outside/),
      ]);
  });

  it("a followed symlink's target replaced right after its open is the opened one, or refused by path lookups", async () => {
    const { source } = scene({ ".hidden/f": "opened" });
    symlinkSync(".hidden/f", join(source, "link"));
    const target = tempDir("copy");
    const copied = await copyTree(source, target, {
      lookup,
      onStep: (path, step) => {
        if (path !== join(source, "link") || step !== "link-target-opened") return;
        writeFileSync(join(source, ".hidden/f.new"), "replacement");
        renameSync(join(source, ".hidden/f.new"), join(source, ".hidden/f"));
      },
    }).catch((e: unknown) => e);
    if (lookup === "path") expect(copied).toMatchObject({ code: "ESOURCECHANGED" });
    else expect(readFileSync(join(target, "link"), "utf8")).toBe("opened");
  });

  it("a symlink's target swapped for a symlink to a secret after resolution is not read", async () => {
    const { source, secretFile } = scene({ "inside.txt": "public" });
    symlinkSync("inside.txt", join(source, "l"));
    const swapTarget = () => {
      unlinkSync(join(source, "inside.txt"));
      symlinkSync(secretFile, join(source, "inside.txt"));
    };
    const target = tempDir("copy");
    await copyTree(source, target, hookAt(source, "l", swapTarget, "link-target"));
    expect(holdsSecret(target)).toBe(false);
    expect(Object.keys(readTree(target))).not.toContain("l");

    rmSync(join(source, "inside.txt"));
    writeFileSync(join(source, "inside.txt"), "public");
    const digest = await digestTree(source, hookAt(source, "l", swapTarget, "link-target"));
    const neither = await fingerprintTree(writeTree(tempDir("expected"), {}));
    const onlyInside = await fingerprintTree(writeTree(tempDir("expected"), { "inside.txt": "public" }));
    // Whether inside.txt itself was read before or after the swap depends on the listing order.
    expect([neither, onlyInside]).toContain(digest);
  });
});

const ATTACKER = fileURLToPath(new URL("./swap-attacker.mjs", import.meta.url));
const attackers: ChildProcess[] = [];
afterEach(() => {
  for (const child of attackers.splice(0)) child.kill("SIGKILL");
});

/** Starts the attacker and resolves once it has swapped once; `stop` resolves to its swap count. */
async function attack(mode: "file" | "dir", entry: string, spare: string, target: string) {
  const child = spawn(process.execPath, [ATTACKER, mode, entry, spare, target], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  attackers.push(child);
  let output = "";
  child.stdout?.on("data", (chunk) => (output += chunk));
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", () => output.includes("ready\n") && resolve());
    child.on("exit", (code) => reject(new Error(`attacker exited early (${code})`)));
  });
  return {
    stop: async () => {
      const exited = new Promise((resolve) => child.on("exit", resolve));
      child.kill("SIGTERM");
      await exited;
      return Number(output.split("\n")[1]);
    },
  };
}

/** A walk may refuse a source that changed under it (the entry vanished mid-read); it must never leak. */
function refusedAsChanged(error: unknown): undefined {
  const code = (error as { code?: string }).code;
  if (code !== "ENOENT" && code !== "ESOURCECHANGED") throw error;
  return undefined;
}

describe("a real attacker process swapping an entry in a tight loop", () => {
  const ROUNDS = 300;

  it("never gets a secret file into a copy or a fingerprint", async () => {
    const { source, secretFile, spare } = scene({ f: "public" });
    writeFileSync(join(spare, "public"), "public");
    const legit = [
      await fingerprintTree(writeTree(tempDir("legit"), { f: "public" })),
      await fingerprintTree(tempDir("legit")),
    ];
    const attacker = await attack("file", join(source, "f"), spare, secretFile);
    const cache = await StageCache.open({ root: join(tempDir("root"), "cache"), onWarning: () => {} });
    for (let round = 0; round < ROUNDS; round++) {
      const slot = await cache.stage(source, `attack-${round}`).catch(refusedAsChanged);
      if (slot) expect(holdsSecret(slot), `stage ${round} copied the secret`).toBe(false);
      const digest = await fingerprintTree(source).catch(refusedAsChanged);
      if (digest) expect(legit, `fingerprint ${round} hashed something else`).toContain(digest);
    }
    await cache.close();
    expect(await attacker.stop()).toBeGreaterThan(ROUNDS);
  });

  it("never gets a secret behind a swapped directory into a copy or a fingerprint", async () => {
    const { source, secretDir, spare } = scene(manyFiles("d"));
    const legit = [
      await fingerprintTree(writeTree(tempDir("legit"), manyFiles("d"))),
      await fingerprintTree(tempDir("legit")),
    ];
    const attacker = await attack("dir", join(source, "d"), spare, secretDir);
    const cache = await StageCache.open({ root: join(tempDir("root"), "cache"), onWarning: () => {} });
    for (let round = 0; round < ROUNDS; round++) {
      const slot = await cache.stage(source, `attack-${round}`).catch(refusedAsChanged);
      if (slot) expect(holdsSecret(slot), `stage ${round} copied the secret`).toBe(false);
      const digest = await fingerprintTree(source).catch(refusedAsChanged);
      if (digest) expect(legit, `fingerprint ${round} hashed something else`).toContain(digest);
    }
    await cache.close();
    expect(await attacker.stop()).toBeGreaterThan(ROUNDS);
    expect(statSync(join(source, "d")).isDirectory()).toBe(true);
  });
});
