/** mulberry32: a tiny seeded generator of floats in [0, 1). The same seed gives the same sequence everywhere. */
export declare function mulberry32(seed: number): () => number;
