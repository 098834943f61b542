// Reading git index files, which a slot's manifest is too: a damaged or hostile one (a shared cache's other
// users can write it) is refused with EGIT before anything is allocated for the entries it claims.
import { describe, expect, it } from "vitest";
import { BaselineError } from "../src/index.js";
import { parseIndex } from "../src/index-file.js";

/** An index header (version 2) claiming `count` entries, followed by `body`. */
function indexClaiming(count: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(12);
  header.write("DIRC", 0, "latin1");
  header.writeUInt32BE(2, 4);
  header.writeUInt32BE(count, 8);
  return Buffer.concat([header, body, Buffer.alloc(20)]);
}

describe("parseIndex", () => {
  it("refuses an index that claims more entries than its bytes can hold, as EGIT, without allocating them", () => {
    // Four billion entries: their columns alone would take 80 GiB (of address space, which Linux grants).
    const before = process.memoryUsage().arrayBuffers;
    let error: unknown;
    try {
      parseIndex(indexClaiming(0xffffffff, Buffer.alloc(200)), 20);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(BaselineError);
    expect(error).toMatchObject({ code: "EGIT" });
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(2 ** 20);
  });

  it("reads an index with no entries", () => {
    expect(parseIndex(indexClaiming(0), 20).count).toBe(0);
  });
});
