// A hostile process for walk-races.test.ts: swaps one entry of a source tree in a tight loop, so that a
// walk that decides on one object and reads another copies what lies behind the swap.
//
//   node swap-attacker.mjs file <entry> <spare-dir> <link-target>
//       <entry> alternates between a regular file (a hard link of <spare-dir>/public) and a symlink to
//       <link-target>; each state is renamed into place in one step, so <entry> always exists.
//   node swap-attacker.mjs dir <entry> <spare-dir> <link-target>
//       <entry> alternates between a real directory and a symlink to <link-target> (a directory), keeping
//       each for about 20 microseconds.
//
// Spare objects live in <spare-dir>, outside the tree, so the tree holds nothing but <entry>. Prints "ready"
// after the first swap; on SIGTERM prints the number of swaps and exits 0.
import { linkSync, renameSync, symlinkSync, unlinkSync } from "node:fs";
import { join } from "node:path";

const [mode, entry, spare, target] = process.argv.slice(2);
let swaps = 0;
let stop = false;
process.on("SIGTERM", () => {
  stop = true;
});

const fileSwap = () => {
  const asFile = join(spare, "as-file");
  const asLink = join(spare, "as-link");
  linkSync(join(spare, "public"), asFile);
  renameSync(asFile, entry);
  symlinkSync(target, asLink);
  renameSync(asLink, entry);
};

/** Keeps a state for a few microseconds, so each state is met by the walk, not only the transitions. */
const hold = () => {
  const until = performance.now() + 0.02;
  while (performance.now() < until);
};

const dirSwap = () => {
  const away = join(spare, "away");
  renameSync(entry, away);
  symlinkSync(target, entry);
  hold();
  unlinkSync(entry);
  renameSync(away, entry);
  hold();
};

const swap = mode === "dir" ? dirSwap : fileSwap;
swap();
process.stdout.write("ready\n");
// Swap in bursts, so the SIGTERM handler gets a turn now and then.
while (!stop) {
  for (let i = 0; i < 200; i++) swap();
  swaps += 200;
  await new Promise((resolve) => setImmediate(resolve));
}
process.stdout.write(`${swaps}\n`);
