import { afterAll } from "vitest";
import { CopyForOtherUsers } from "./copy-for-others.mjs";

let copy: CopyForOtherUsers | undefined;

/**
 * The path of a copy of `script` (a worker of this checkout) that a process of another user, such as
 * `nobody`, can run wherever the checkout lies, even in a directory only its owner may enter: the copy holds
 * the script and everything it loads (the built packages it imports and their dependencies), under a fresh
 * directory of os.tmpdir() every user can enter, with the same relative layout, so it runs the same code.
 * Build first: the packages are copied as they ship (dist). Made on first use in a test file and shared by
 * its tests; removed after the file's last test. Throws when an import of the script cannot be found, or
 * when os.tmpdir() itself is out of other users' reach (code EACCES).
 */
export function runnableByOthers(script: string): string {
  copy ??= new CopyForOtherUsers();
  return copy.add(script);
}

afterAll(() => {
  copy?.remove();
  copy = undefined;
});
