import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { defaultCacheDir } from "../src/index.js";

describe("defaultCacheDir", () => {
  it("uses CAS_STAGE_CACHE_DIR when set", () => {
    expect(
      defaultCacheDir({ CAS_STAGE_CACHE_DIR: "/srv/cache", XDG_CACHE_HOME: "/x" }, "linux", "/home/u"),
    ).toBe("/srv/cache");
  });
  it("uses $XDG_CACHE_HOME/cas-stage on Linux, or ~/.cache when unset or relative", () => {
    expect(defaultCacheDir({ XDG_CACHE_HOME: "/x" }, "linux", "/home/u")).toBe("/x/cas-stage");
    expect(defaultCacheDir({}, "linux", "/home/u")).toBe("/home/u/.cache/cas-stage");
    expect(defaultCacheDir({ XDG_CACHE_HOME: "rel" }, "linux", "/home/u")).toBe("/home/u/.cache/cas-stage");
  });
  it("uses ~/Library/Caches on macOS and %LOCALAPPDATA% on Windows", () => {
    expect(defaultCacheDir({}, "darwin", "/Users/u")).toBe("/Users/u/Library/Caches/cas-stage");
    expect(defaultCacheDir({ LOCALAPPDATA: "C:\\Users\\u\\AppData\\Local" }, "win32", "C:\\Users\\u")).toBe(
      join("C:\\Users\\u\\AppData\\Local", "cas-stage"),
    );
  });
});
