// What findDebris lists and what removeDebris does with a listing, on real directories: it acts on the
// listed stale items only, reports what it removed under the listed item, and turns each failure into a
// warning. Failures are real ones (chattr +i), not mocks.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { kernelTest } from "@cas-stage/test-support/kernel";
import { describe, expect, it } from "vitest";
import { type DebrisContext, findDebris, removeDebris } from "../src/debris.js";
import { EVICTION_CLAIM, Layout, STAGE_COMPLETE_SENTINEL } from "../src/layout.js";
import { tempDir, writeTree } from "./fixtures.js";

const HOUR_MS = 3_600_000;

function contextFor(root: string, staleAfterMs = 60_000): DebrisContext & { warnings: string[] } {
  const layout = new Layout(root);
  for (const dir of [layout.stagingDir, layout.scratchDir, layout.trashDir])
    mkdirSync(dir, { recursive: true });
  const warnings: string[] = [];
  // Every claim in these tests is an interrupted eviction's.
  const store = layout.entryStore({ claimGraceMs: 0 });
  return {
    layout,
    store,
    staleAfterMs,
    trashGraceMs: 60_000,
    onWarning: (message) => warnings.push(message),
    warnings,
  };
}

/** A directory with a file in it, its times moved `ageMs` back (forward for a negative age). */
function aged(path: string, ageMs: number): string {
  writeTree(path, { f: "x" });
  const when = new Date(Date.now() - ageMs);
  utimesSync(join(path, "f"), when, when);
  utimesSync(path, when, when);
  return path;
}

/** A stage temp of a build that died an hour ago. */
const staleTemp = (context: DebrisContext, name: string) =>
  aged(join(context.layout.stagingDir, name), HOUR_MS);

const abandonedTrash = (context: DebrisContext) =>
  writeTree(join(context.layout.trashDir, `gone.${(Date.now() - HOUR_MS).toString(36)}.0123456789ab`), {
    f: "x",
  });

describe("finding debris", () => {
  it("lists as temps only directories of the staging directory named like a stage temp", async () => {
    const context = contextFor(tempDir("root"));
    const temp = staleTemp(context, "ab.tmp.AbC123");
    writeFileSync(join(context.layout.stagingDir, "cd.tmp.AbC123"), "");
    aged(join(context.layout.stagingDir, "not-a-temp"), HOUR_MS);
    const found = (await findDebris(context, { measure: false })).debris;
    expect(found.map((item) => [item.kind, item.path, item.stale])).toEqual([["temp", temp, true]]);
  });

  it("takes everything for stale with staleAfterMs 0, an mtime in the future included", async () => {
    const context = contextFor(tempDir("root"), 0);
    const temp = aged(join(context.layout.stagingDir, "ab.tmp.AbC123"), -HOUR_MS);
    const found = (await findDebris(context, { measure: false })).debris;
    expect(found).toEqual([{ kind: "temp", path: temp, bytes: 0, stale: true }]);
  });
});

describe("removing debris", () => {
  it("acts on the listed items only: stale temps and trash that were not listed stay", async () => {
    const context = contextFor(tempDir("root"));
    const temp = staleTemp(context, "ab.tmp.AbC123");
    const trash = abandonedTrash(context);
    expect(await removeDebris(context, [])).toEqual({ removed: [], repaired: [] });
    expect(existsSync(temp)).toBe(true);
    expect(existsSync(trash)).toBe(true);
  });

  it("reports each removed temp as listed, and one that went stale after the listing unmeasured", async () => {
    const context = contextFor(tempDir("root"));
    staleTemp(context, "ab.tmp.AbC123");
    staleTemp(context, "cd.tmp.AbC123");
    const found = (await findDebris(context, { measure: true })).debris;
    const late = staleTemp(context, "ef.tmp.AbC123");
    const { removed } = await removeDebris(context, found);
    expect(removed).toEqual([...found, { kind: "temp", path: late, bytes: 0, stale: true }]);
    expect(readdirSync(context.layout.stagingDir)).toEqual([]);
  });

  it("keeps an incomplete entry that was completed after the listing", async () => {
    const root = tempDir("root");
    const context = contextFor(root);
    const slot = aged(join(root, "ab", "abc"), HOUR_MS);
    const found = (await findDebris(context, { measure: false })).debris;
    expect(found.map((item) => [item.kind, item.stale])).toEqual([["incomplete", true]]);
    writeFileSync(join(slot, STAGE_COMPLETE_SENTINEL), '{"version":1,"files":1,"bytes":1}\n');
    expect(await removeDebris(context, found)).toEqual({ removed: [], repaired: [] });
    expect(readdirSync(slot).sort()).toEqual([STAGE_COMPLETE_SENTINEL, "f"]);
  });

  kernelTest("chattr", "warns, and goes on, when a stale temp cannot be removed", async () => {
    const context = contextFor(tempDir("root"));
    const temp = staleTemp(context, "ab.tmp.AbC123");
    const trash = abandonedTrash(context);
    execFileSync("chattr", ["+i", join(temp, "f")]);
    try {
      const { removed } = await removeDebris(context, (await findDebris(context, { measure: false })).debris);
      expect(removed.map((item) => item.path)).toEqual([trash]);
      expect(context.warnings).toEqual([expect.stringMatching(/^could not remove stale stage temps: ./)]);
    } finally {
      execFileSync("chattr", ["-i", join(temp, "f")]);
    }
  });

  kernelTest("chattr", "warns, and goes on, when an interrupted eviction cannot be given back", async () => {
    const root = tempDir("root");
    const context = contextFor(root);
    const slot = writeTree(join(root, "ab", "abc"), { [EVICTION_CLAIM]: "{}\n" });
    const trash = abandonedTrash(context);
    execFileSync("chattr", ["+i", slot]);
    try {
      const found = (await findDebris(context, { measure: false })).debris;
      expect(found.map((item) => item.kind).sort()).toEqual(["claimed", "trash"]);
      const result = await removeDebris(context, found);
      expect(result).toEqual({ removed: [expect.objectContaining({ path: trash })], repaired: [] });
      expect(context.warnings).toEqual([
        expect.stringMatching(/^could not give back an entry whose eviction was interrupted: ./),
      ]);
    } finally {
      execFileSync("chattr", ["-i", slot]);
    }
    expect(readdirSync(slot)).toEqual([EVICTION_CLAIM]);
  });

  kernelTest("chattr", "warns, and goes on, when an incomplete entry cannot be moved aside", async () => {
    const root = tempDir("root");
    const context = contextFor(root);
    const slot = aged(join(root, "ab", "abc"), HOUR_MS);
    const trash = abandonedTrash(context);
    execFileSync("chattr", ["+i", join(root, "ab")]);
    try {
      const result = await removeDebris(context, (await findDebris(context, { measure: false })).debris);
      expect(result).toEqual({ removed: [expect.objectContaining({ path: trash })], repaired: [] });
      expect(context.warnings).toEqual([expect.stringMatching(/^could not remove an incomplete entry: ./)]);
    } finally {
      execFileSync("chattr", ["-i", join(root, "ab")]);
    }
    expect(existsSync(join(slot, "f"))).toBe(true);
  });
});
