import { describe, expect, it } from "vitest";
import { defaultCacheDir } from "../src/index.js";

// Expectations are literals: computing them with the implementation's own `join` would accept whatever it does.
describe("defaultCacheDir", () => {
  it("uses CAS_STAGE_CACHE_DIR as given when set and non-empty", () => {
    expect(
      defaultCacheDir({ CAS_STAGE_CACHE_DIR: "/srv/cache", XDG_CACHE_HOME: "/x" }, "linux", "/home/u"),
    ).toBe("/srv/cache");
    expect(defaultCacheDir({ CAS_STAGE_CACHE_DIR: "rel/dir" }, "win32", "C:\\Users\\u")).toBe("rel/dir");
    expect(defaultCacheDir({ CAS_STAGE_CACHE_DIR: "" }, "linux", "/home/u")).toBe("/home/u/.cache/cas-stage");
  });

  it("uses $XDG_CACHE_HOME/cas-stage on Linux, or ~/.cache when unset, empty or relative", () => {
    expect(defaultCacheDir({ XDG_CACHE_HOME: "/x" }, "linux", "/home/u")).toBe("/x/cas-stage");
    expect(defaultCacheDir({ XDG_CACHE_HOME: "/x/" }, "freebsd", "/home/u")).toBe("/x/cas-stage");
    expect(defaultCacheDir({}, "linux", "/home/u")).toBe("/home/u/.cache/cas-stage");
    expect(defaultCacheDir({ XDG_CACHE_HOME: "" }, "linux", "/home/u")).toBe("/home/u/.cache/cas-stage");
    expect(defaultCacheDir({ XDG_CACHE_HOME: "rel" }, "linux", "/home/u")).toBe("/home/u/.cache/cas-stage");
  });

  it("uses ~/Library/Caches on macOS, whatever XDG_CACHE_HOME says", () => {
    expect(defaultCacheDir({}, "darwin", "/Users/u")).toBe("/Users/u/Library/Caches/cas-stage");
    expect(defaultCacheDir({ XDG_CACHE_HOME: "/x" }, "darwin", "/Users/u")).toBe(
      "/Users/u/Library/Caches/cas-stage",
    );
  });

  it("uses %LOCALAPPDATA%\\cas-stage on Windows, or ~\\AppData\\Local, with Windows separators on any host", () => {
    expect(defaultCacheDir({ LOCALAPPDATA: "D:\\Local" }, "win32", "C:\\Users\\u")).toBe(
      "D:\\Local\\cas-stage",
    );
    expect(defaultCacheDir({}, "win32", "C:\\Users\\u")).toBe("C:\\Users\\u\\AppData\\Local\\cas-stage");
    expect(defaultCacheDir({ LOCALAPPDATA: "", XDG_CACHE_HOME: "/x" }, "win32", "C:\\Users\\u")).toBe(
      "C:\\Users\\u\\AppData\\Local\\cas-stage",
    );
  });
});
