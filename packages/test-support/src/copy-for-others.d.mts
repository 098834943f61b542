/**
 * A directory under os.tmpdir() that every user can enter, holding copies of scripts and of everything they
 * load (see copy-for-others.mjs). Throws (code EACCES) when a parent of os.tmpdir() keeps other users out.
 */
export declare class CopyForOtherUsers {
  /** The directory holding the copy. */
  readonly root: string;
  constructor();
  /** Copies `script` and what it loads, unless already copied; returns the path of its copy. */
  add(script: string): string;
  /** Removes the copy, everything in it. */
  remove(): void;
}
