import { describe, expect, it } from "vitest";
import { CasError, codeOf, messageOf, StageError } from "../src/index.js";

describe("CasError", () => {
  it("carries a code, a path, a message and the cause whole", () => {
    const cause = new Error("underneath");
    const error = new CasError("ENOSPC", "cannot write /c/x: no space", { path: "/c/x", cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("CasError");
    expect([error.code, error.path, error.message]).toEqual([
      "ENOSPC",
      "/c/x",
      "cannot write /c/x: no space",
    ]);
    expect(error.cause).toBe(cause);
  });

  it("has no cause property at all when given none, and no path", () => {
    const error = new CasError("EAGAIN", "again");
    expect(Object.hasOwn(error, "cause")).toBe(false);
    expect(error.path).toBeUndefined();
  });
});

describe("StageError", () => {
  it("prefixes the cause's message, copies its code and keeps it as the cause", () => {
    const cause = Object.assign(new Error("EXDEV: cross-device link"), { code: "EXDEV" });
    const error = new StageError("finalize", "stage finalize", cause, "/c/slot");
    expect(error).toBeInstanceOf(CasError);
    expect(error.name).toBe("StageError");
    expect([error.phase, error.code, error.path]).toEqual(["finalize", "EXDEV", "/c/slot"]);
    expect(error.message).toBe("stage finalize: EXDEV: cross-device link");
    expect(error.cause).toBe(cause);
  });

  it("says EIO for a cause without a code, and takes a thrown non-Error as its message", () => {
    expect(new StageError("tmp", "p", new Error("odd")).code).toBe("EIO");
    const odd = new StageError("tmp", "stage tmp", "a string");
    expect([odd.code, odd.message, odd.cause]).toEqual(["EIO", "stage tmp: a string", "a string"]);
  });
});

describe("codeOf and messageOf", () => {
  it("reads a string code, and nothing else", () => {
    expect(codeOf(Object.assign(new Error("x"), { code: "ENOENT" }))).toBe("ENOENT");
    expect(codeOf({ code: 42 })).toBeUndefined();
    expect(codeOf(new Error("x"))).toBeUndefined();
    expect(codeOf(null)).toBeUndefined();
    expect(codeOf(undefined)).toBeUndefined();
    expect(codeOf("ENOENT")).toBeUndefined();
  });

  it("reads an Error's message, or the string form of anything else", () => {
    expect(messageOf(new TypeError("bad"))).toBe("bad");
    expect(messageOf("plain")).toBe("plain");
    expect(messageOf(7)).toBe("7");
    expect(messageOf(undefined)).toBe("undefined");
  });
});
