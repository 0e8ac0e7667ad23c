/** A source of uniform numbers in [0, 1). Injected everywhere placement needs chance, so tests are reproducible. */
export type RandomSource = () => number;

/**
 * A small seeded generator (mulberry32). Written by hand because it is eight lines and the only property needed is
 * "reproducible from a seed and evenly spread"; no cryptographic strength is wanted or claimed.
 */
export function seededRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
