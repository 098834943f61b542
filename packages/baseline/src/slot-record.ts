import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { CLAIM, SENTINEL } from "./layout.js";

/**
 * What a slot's sentinel records about the tree its build wrote. The sentinel is written by the build as
 * its very last file, so a record exists only for a whole tree.
 *
 * - `commit` lets a listing or a verification notice a slot that was renamed by hand.
 * - `files` and `bytes` (files and symlinks, as the sum of their blob sizes) let pruning under a size cap
 *   and listing work without walking every slot. The file sizes are those git's index recorded while
 *   writing them (`checkedOutBytes`): a file of 4 GiB or more counts modulo 4 GiB.
 */
export interface SlotRecord {
  commit: string;
  files: number;
  bytes: number;
}

const FORMAT = 1;

/** The sentinel's content: one line of JSON. */
export function encodeSlotRecord(record: SlotRecord): string {
  return `${JSON.stringify({ format: FORMAT, commit: record.commit, files: record.files, bytes: record.bytes })}\n`;
}

/** The record in a sentinel's text, or undefined when it is not one this version wrote. */
export function parseSlotRecord(text: string): SlotRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const { format, commit, files, bytes } = (parsed ?? {}) as Record<string, unknown>;
  if (format !== FORMAT || typeof commit !== "string") return undefined;
  if (!isCount(files) || !isCount(bytes)) return undefined;
  return { commit, files, bytes };
}

/**
 * The record of the slot at `slot`, read from its sentinel or, for a slot being evicted, its claim.
 * Undefined when neither can be read or parsed. Never throws.
 */
export async function readSlotRecord(slot: string): Promise<SlotRecord | undefined> {
  for (const marker of [SENTINEL, CLAIM]) {
    const text = await readFile(join(slot, marker), "utf8").catch(() => undefined);
    if (text !== undefined) return parseSlotRecord(text);
  }
  return undefined;
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}
