/**
 * A seeded generator of numbers in [0, 1) (mulberry32), so a crash test kills at the same moments on every run. The
 * ledger stands on no other package of ours, so it keeps these few lines rather than import placement's copy.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
