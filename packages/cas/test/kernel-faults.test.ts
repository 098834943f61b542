// Real kernel errors, not mocks: a full tmpfs (ENOSPC), an immutable directory (EPERM), a read-only mount
// (EROFS) and a rename across filesystems (EXDEV). Each needs its own capability (mostly root); a test whose
// capability is missing is skipped with the reason in its name, or fails under CAS_REQUIRE_KERNEL_FAULTS=1.
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { bindReadOnly, chattr, kernelTest, mountTmpfs, unmount } from "@cas-stage/test-support/kernel";
import { afterEach, describe, expect } from "vitest";
import { StageError, stage } from "../src/index.js";
import { tempDir } from "./fixtures.js";

const undo: Array<() => void> = [];
afterEach(() => {
  for (const step of undo.splice(0).reverse()) step();
});

const isSlotDir = (final: string) => async () => (await readdir(final).catch(() => undefined)) !== undefined;

describe("stage against real kernel faults", () => {
  kernelTest(
    "mountTmpfs",
    "fails with the build's ENOSPC on a full filesystem, leaves nothing, and works once space is freed",
    async () => {
      const parent = await tempDir();
      mountTmpfs(parent, "256k");
      undo.push(() => unmount(parent));
      const final = join(parent, "slot");
      const big = Buffer.alloc(1024 * 1024, 1);

      const error = await stage({
        parent,
        final,
        build: (staging) => writeFile(join(staging, "big"), big),
        adopt: isSlotDir(final),
      }).catch((e: unknown) => e);
      expect((error as NodeJS.ErrnoException).code).toBe("ENOSPC");
      expect(error).not.toBeInstanceOf(StageError); // build's own error, unwrapped
      expect(await readdir(parent)).toEqual([]);

      const result = await stage({
        parent,
        final,
        build: (staging) => writeFile(join(staging, "small"), "fits"),
        adopt: isSlotDir(final),
      });
      expect(result.adopted).toBe(false);
      expect(await readdir(final)).toEqual(["small"]);
    },
  );

  kernelTest(
    "chattr",
    "reports an immutable parent as a tmp-phase StageError with EPERM and writes nothing",
    async () => {
      const parent = await tempDir();
      chattr("+i", parent);
      undo.push(() => chattr("-i", parent));
      const error = (await stage({
        parent,
        final: join(parent, "slot"),
        tmpPrefix: "stage tmp",
        build: () => {},
        adopt: () => false,
      }).catch((e: unknown) => e)) as StageError;
      expect(error).toBeInstanceOf(StageError);
      expect(error.phase).toBe("tmp");
      expect(error.code).toBe("EPERM");
      expect(error.message).toMatch(
        /^stage tmp: EPERM: operation not permitted, mkdir '.*slot\.tmp\.[A-Za-z0-9]{6}'$/,
      );
      expect(await readdir(parent)).toEqual([]);
    },
  );

  kernelTest("bindReadOnly", "reports a read-only parent as a tmp-phase StageError with EROFS", async () => {
    const parent = await tempDir();
    bindReadOnly(parent);
    undo.push(() => unmount(parent));
    const error = (await stage({
      parent,
      final: join(parent, "slot"),
      build: () => {},
      adopt: () => false,
    }).catch((e: unknown) => e)) as StageError;
    expect(error.phase).toBe("tmp");
    expect(error.code).toBe("EROFS");
    expect(await readdir(parent)).toEqual([]);
  });

  kernelTest(
    "mountTmpfs",
    "reports a slot on another filesystem as a finalize-phase EXDEV naming both paths, and removes the temp",
    async () => {
      const parent = await tempDir();
      const elsewhere = join(await tempDir(), "mnt");
      await mkdir(elsewhere);
      mountTmpfs(elsewhere, "1m");
      undo.push(() => unmount(elsewhere));
      const final = join(elsewhere, "slot");
      const error = (await stage({
        parent,
        final,
        finalizePrefix: "stage finalize",
        build: (staging) => writeFile(join(staging, "f"), "x"),
        adopt: isSlotDir(final),
      }).catch((e: unknown) => e)) as StageError;
      expect(error).toBeInstanceOf(StageError);
      expect(error.phase).toBe("finalize");
      expect(error.code).toBe("EXDEV");
      expect(error.message).toContain(parent);
      expect(error.message).toContain(final);
      expect(await readdir(parent)).toEqual([]);
      expect(await readdir(elsewhere)).toEqual([]);
    },
  );
});
