import { open, readdir } from "node:fs/promises";
import { join } from "node:path";

const SYNC_BATCH = 16;

/**
 * fsyncs every regular file and directory under `root` (and `root` itself), so that after a power loss a
 * renamed tree cannot come back with empty or missing files. Symlinks are not opened: the fsync of the
 * directory that holds them makes them durable.
 */
export async function syncTree(root: string): Promise<void> {
  const entries = await readdir(root, { withFileTypes: true });
  // A few at a time: enough to overlap the disk's flushes, few enough never to exhaust file descriptors.
  for (let start = 0; start < entries.length; start += SYNC_BATCH) {
    await Promise.all(
      entries.slice(start, start + SYNC_BATCH).map((entry) => {
        const path = join(root, entry.name);
        if (entry.isDirectory()) return syncTree(path);
        if (entry.isFile()) return syncPath(path);
        return undefined;
      }),
    );
  }
  await syncDirectory(root);
}

/**
 * fsyncs a directory so that the entries created or renamed in it survive a power loss. Windows cannot
 * open a directory for fsync; there the rename itself is as durable as NTFS makes it, so this is a no-op.
 */
export async function syncDirectory(path: string): Promise<void> {
  if (process.platform === "win32") return;
  await syncPath(path);
}

async function syncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
