// A child process for the race and crash tests. Usage:
//   node stage-worker.mjs <parent> <slots (comma-separated)> <files per tree> <ms per file> [<go-file>] [<seed>]
// <files per tree> "empty" makes every build write nothing at all. With a seed, the pause after each file is
// drawn from [0, <ms per file>) by a generator seeded with it (the test prints the seed); without, it is fixed.
// Waits until <go-file> exists (a barrier, so all workers start together), then stages every slot in
// order. Each tree holds <files> files whose content is derived from the slot name, so any partial tree is
// detectable. Prints one JSON line per event: {"event":"building","slot"} once the temp dir has a file,
// {"event":"staged","slot","adopted"} per successful call, {"event":"error",...} on failure.
import "@cas-stage/test-support/stryker-child";
import { existsSync } from "node:fs";
import { lstat, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { mulberry32 } from "@cas-stage/test-support/mulberry32";
import { stage } from "../../dist/index.js";

const [parent, slotList, filesArg, msArg, goFile, seedArg] = process.argv.slice(2);
const slots = slotList.split(",");
const empty = filesArg === "empty";
const files = empty ? 0 : Number(filesArg);
const msPerFile = Number(msArg);
const random = seedArg ? mulberry32(Number(seedArg)) : () => 1;

function emit(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

if (goFile) while (!existsSync(goFile)) await sleep(2);

for (const slot of slots) {
  const final = join(parent, slot);
  try {
    const { adopted } = await stage({
      parent,
      final,
      build: async (staging) => {
        if (empty) return;
        await mkdir(join(staging, "d"));
        for (let i = 0; i < files; i++) {
          await writeFile(join(staging, "d", `f${i}`), `${slot}:${i}\n`.repeat(64));
          if (i === 0) emit({ event: "building", slot });
          if (msPerFile > 0) await sleep(msPerFile * random());
        }
      },
      adopt: async () => (await lstat(final).catch(() => undefined))?.isDirectory() ?? false,
    });
    emit({ event: "staged", slot, adopted });
  } catch (error) {
    emit({ event: "error", slot, message: String(error?.message ?? error), code: error?.code });
  }
}
