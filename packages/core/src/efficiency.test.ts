import { describe, expect, it } from 'vitest';
import { efficiencyRatios, MostCommon } from './efficiency.ts';

describe('MostCommon', () => {
  it('names the key noted most often, the first to reach a count on a tie, and stops learning keys past its bound', () => {
    const m = new MostCommon(2);
    expect(m.mostCommon).toBeUndefined();
    m.note(4);
    m.note(8);
    expect(m.mostCommon).toBe(4);
    m.note(8);
    m.note(16); // a third key: not counted
    m.note(16);
    m.note(16);
    expect(m.mostCommon).toBe(8);
  });
});

describe('efficiencyRatios', () => {
  it('divides used by committed and by effective capacity, 0 when there is nothing to divide by', () => {
    expect(efficiencyRatios(50, 100, 200)).toEqual({ allocationEfficiency: 0.5, utilizationEfficiency: 0.25 });
    expect(efficiencyRatios(50, 0, 0)).toEqual({ allocationEfficiency: 0, utilizationEfficiency: 0 });
  });
});
