// A child process for the EntryStore process tests (entry-windows, entry-race, entry-crash). Usage:
//   node entry-worker.mjs '<json config>'
// Config: { root, sentinel, claim, umask?, claimGraceMs?, pauseAt?: [hook names], ready?: true,
//           calls?: [{ op, name, ... }], role?: { kind, names, iterations, seed } }
// Prints one JSON line per event:
//   {"event":"ready"}                       loaded; with `ready`, then waits for a line "go" on stdin
//   {"event":"at","hook","slot","trash"?}   reached a hook named in `pauseAt`; waits for a line on stdin
//                                           (the crash tests SIGKILL it there instead)
//   {"event":"done","op","name",...}        one per completed call, with its result, and for every path a
//                                           call returned, the check of the tree read back at once
//   {"event":"error","op","name","code","message"}
//   {"event":"warning","message","path"}
// Entry trees are the ones test/entries.ts writes and checks: d/f0..f5, each file naming its entry.
import "@cas-stage/test-support/stryker-child";
import { lstat, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { mulberry32 } from "@cas-stage/test-support/mulberry32";
import { EntryStore, evictLeastRecentlyUsed } from "../../dist/index.js";

const FILES = 6;
const config = JSON.parse(process.argv[2]);
const { root, sentinel, claim } = config;
if (config.umask !== undefined) process.umask(config.umask);

const emit = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
const lines = createInterface({ input: process.stdin });
const pendingLines = [];
const lineWaiters = [];
lines.on("line", (line) => {
  const waiter = lineWaiters.shift();
  if (waiter) waiter(line);
  else pendingLines.push(line);
});
const nextLine = () =>
  pendingLines.length > 0 ? Promise.resolve(pendingLines.shift()) : new Promise((r) => lineWaiters.push(r));

const pauseAt = new Set(config.pauseAt ?? []);
const pause = (hook) => async (slot, trash) => {
  if (!pauseAt.has(hook)) return;
  emit({ event: "at", hook, slot, ...(trash ? { trash } : {}) });
  await nextLine();
};

const store = new EntryStore({
  stagingDir: join(root, ".staging"),
  trashDir: join(root, ".trash"),
  sentinel,
  claim,
  ...(config.claimGraceMs === undefined ? {} : { claimGraceMs: config.claimGraceMs }),
  onWarning: (message, path) => emit({ event: "warning", message, path }),
  hooks: {
    beforeClaim: pause("beforeClaim"),
    beforeTrash: pause("beforeTrash"),
    afterTrash: pause("afterTrash"),
    afterTouch: pause("afterTouch"),
  },
});
await store.prepare();

const slotOf = (name) => join(root, name.slice(0, 2), name);
const content = (name, i) => `${name}:${i}\n`.repeat(32);

async function writeTree(dir, name) {
  await mkdir(join(dir, "d"), { recursive: true });
  for (let i = 0; i < FILES; i++) {
    await writeFile(join(dir, "d", `f${i}`), content(name, i));
    if (i === 0 && pauseAt.has("building")) {
      emit({ event: "at", hook: "building", slot: slotOf(name), staging: dir });
      await nextLine();
    }
  }
  return `built ${name}\n`;
}

/**
 * Reads the tree at a returned path back at once: "whole"; "moved" when the slot left its path whole during
 * the read (an eviction, legitimate: another inode or nothing is at the path afterwards, or the same one came
 * back whole, restored); otherwise a violation: a file with the wrong content, or files missing from the
 * very directory that is still at the slot's path (deleted in place).
 */
async function check(slot, name) {
  const before = await lstat(slot).catch(() => undefined);
  if (!before) return "moved";
  for (let attempt = 0; attempt < 5; attempt++) {
    const problem = await treeProblem(slot, name);
    if (!problem) return "whole";
    if (problem.endsWith("differs")) return `violation: ${problem} in ${slot}`;
    const after = await lstat(slot).catch(() => undefined);
    if (!after || after.ino !== before.ino) return "moved";
  }
  return `violation: files missing from ${slot}, still in place`;
}

/**
 * inspect() looks for the sentinel, then the claim: a give-back between the two makes a whole entry look
 * incomplete for a moment. One listing of the slot (a single getdents for so small a directory, which no
 * rename inside it can split) tells: a slot that exists without either marker is a violation.
 */
async function markersCheck(slot) {
  const names = await readdir(slot).catch(() => undefined);
  if (!names) return "moved";
  if (names.includes(sentinel) || names.includes(claim)) return "whole";
  return `violation: ${slot} holds ${names.join(",")} without its sentinel`;
}

async function treeProblem(slot, name) {
  try {
    const names = await readdir(join(slot, "d"));
    if (names.length !== FILES) return `lists ${names.length} files`;
    for (let i = 0; i < FILES; i++) {
      if ((await readFile(join(slot, "d", `f${i}`), "utf8")) !== content(name, i)) return `d/f${i} differs`;
    }
    return undefined;
  } catch (error) {
    if (error.code === "ENOENT") return "a file vanished";
    throw error;
  }
}

async function call(op, name, options = {}) {
  const slot = slotOf(name);
  try {
    switch (op) {
      case "publish": {
        const { outcome } = await store.publish(slot, { build: (staging) => writeTree(staging, name) });
        return { outcome, check: await check(slot, name) };
      }
      case "touch": {
        const hit = await store.touch(slot);
        return hit ? { hit, check: await check(slot, name) } : { hit };
      }
      case "evict": {
        const found = await store.inspect(slot);
        if (found.state !== "complete") return { evicted: false, state: found.state };
        return { evicted: await store.evict(slot, found.lastUsedMs, { force: options.force ?? false }) };
      }
      case "lru": {
        const candidates = [];
        for (const other of options.names) {
          const found = await store.inspect(slotOf(other));
          if (found.state === "complete")
            candidates.push({ slot: slotOf(other), bytes: 1, lastUsedMs: found.lastUsedMs });
        }
        const report = await evictLeastRecentlyUsed(store, candidates, { maxBytes: options.maxBytes });
        return { removed: report.removed.length };
      }
      case "makeWay":
        await store.makeWay(slot);
        return { state: (await store.inspect(slot)).state };
      case "repairClaim":
        return { repaired: await store.repairClaim(slot) };
      case "removeAbandonedTrash":
        return { removed: (await store.removeAbandonedTrash(options.graceMs ?? 0)).paths.length };
      case "scan": {
        const found = await store.inspect(slot);
        if (found.state === "incomplete") return { state: found.state, check: await markersCheck(slot) };
        if (found.state !== "complete" && found.state !== "claimed") return { state: found.state };
        return { state: found.state, check: await check(slot, name) };
      }
      default:
        throw new Error(`unknown op ${op}`);
    }
  } catch (error) {
    return { error: { code: error.code, message: String(error.message ?? error) } };
  }
}

async function run(op, name, options) {
  const result = await call(op, name, options);
  if (result.error) emit({ event: "error", op, name, ...result.error });
  else emit({ event: "done", op, name, ...result });
}

emit({ event: "ready" });
if (config.ready) await nextLine();

for (const { op, name, ...options } of config.calls ?? []) await run(op, name, options);

if (config.role) {
  const { kind, names, iterations, seed } = config.role;
  const random = mulberry32(seed);
  const pick = () => names[Math.floor(random() * names.length)];
  for (let i = 0; i < iterations; i++) {
    const name = pick();
    if (kind === "publisher") await run("publish", name);
    else if (kind === "hitter") await run("touch", name);
    else if (kind === "scanner") await run("scan", name);
    else if (kind === "evictor") {
      if (random() < 0.2) await run("lru", name, { names, maxBytes: 1 });
      else await run("evict", name, { force: random() < 0.1 });
    } else if (kind === "cleaner") {
      const r = random();
      if (r < 0.4) await run("repairClaim", name);
      else if (r < 0.7) await run("removeAbandonedTrash", name, { graceMs: 0 });
      else await run("makeWay", name);
    }
  }
}
lines.close();
