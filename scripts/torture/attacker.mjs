// The torture run's attacker: swaps the attacked source's `f` (a regular file) and `d` (a directory) for
// symlinks to the secret beside the source, and back, as fast as it can, each swap one atomic rename, until
// it is killed. Started by supervisor.mjs with the work directory.
//
// A stage or fingerprint that decides by one look (readdir, stat) and reads by another (open by path) would
// copy the secret now and then; the walk must decide and read through one descriptor.
import { renameSync } from "node:fs";
import { join } from "node:path";

const work = process.argv[2];
const source = join(work, "swap");
const swaps = [
  { path: join(source, "f"), link: join(work, "swap-f-link"), aside: join(work, "swap-f-aside") },
  { path: join(source, "d"), link: join(work, "swap-d-link"), aside: join(work, "swap-d-aside") },
];

process.stdout.write("ready\n");
for (let round = 0; ; round++) {
  for (const { path, link, aside } of swaps) {
    // Original out of the way, the symlink in: f (or d) now leads to the secret...
    renameSync(path, aside);
    renameSync(link, path);
    // ...and back again.
    renameSync(path, link);
    renameSync(aside, path);
  }
  // Yield now and then so the kill at the end is noticed quickly.
  if (round % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
}
