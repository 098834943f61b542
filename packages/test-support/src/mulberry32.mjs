// Plain JavaScript, so that the worker processes of the tests (.mjs files run by bare node) share the one
// generator with the TypeScript tests: a seed then means the same choices in every process.

/**
 * mulberry32: a tiny seeded generator of floats in [0, 1). The same seed gives the same sequence everywhere.
 * @param {number} seed any integer (taken modulo 2^32)
 * @returns {() => number}
 */
export function mulberry32(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
