// Slot names: the escaping of fingerprints into lower-case names and back, and which directories under a
// root are slots (today's names, and the raw names of older versions) and which are not.
import { describe, expect, it } from "vitest";
import { assertFingerprint, fingerprintOfName, nameOf, parseSlotName } from "../src/layout.js";

describe("a slot name", () => {
  it("maps back to the fingerprint it escapes", () => {
    expect(nameOf("ABc")).toBe("!a!bc");
    expect(fingerprintOfName("!a!bc")).toBe("ABc");
    expect(fingerprintOfName("ab12")).toBe("ab12");
  });

  it("is no escaped name when any part of it holds an upper-case letter or a bare '!'", () => {
    for (const name of ["ABC", "Ab", "aB", "a!", "!", "a!1"])
      expect(fingerprintOfName(name), name).toBeUndefined();
  });
});

describe("a directory under a fan-out", () => {
  it("is a slot of an older version when named by a raw fingerprint with upper-case letters", () => {
    expect(parseSlotName("AB", "ABc")).toEqual({ fingerprint: "ABc", legacy: true });
  });

  it("is no slot when its name belongs in another fan-out, today's names and older ones alike", () => {
    expect(parseSlotName("zz", "abc")).toBeUndefined();
    expect(parseSlotName("zz", "ABc")).toBeUndefined();
    expect(parseSlotName("!a!b", "ABc")).toBeUndefined();
  });
});

describe("a fingerprint", () => {
  it("must be a string, even one whose text would pass", () => {
    expect(() => assertFingerprint(123)).toThrow(TypeError);
    expect(() => assertFingerprint(["abc"])).toThrow(
      /^stage-cache: invalid fingerprint \["abc"\]: a fingerprint must match/,
    );
    expect(() => assertFingerprint("abc")).not.toThrow();
  });
});
