import { describe, expect, it } from 'vitest';
import { Ring, SeriesRing } from './ring.ts';

const point = (i: number) => ({
  at: i,
  memEffective: 100,
  memCommitted: i,
  memUsed: i / 2,
  cpuEffective: 64,
  cpuCommitted: i % 64,
  cpuUsed: 1,
  nodesReady: 3,
});

describe('Ring', () => {
  it('keeps the newest items up to its capacity, oldest first', () => {
    const r = new Ring<number>(3);
    expect(r.toArray()).toEqual([]);
    r.push(1);
    r.push(2);
    expect(r.toArray()).toEqual([1, 2]);
    for (let i = 3; i <= 10; i++) r.push(i);
    expect(r.size).toBe(3);
    expect(r.toArray()).toEqual([8, 9, 10]);
    expect(r.last(2)).toEqual([9, 10]);
    expect(r.last(5)).toEqual([8, 9, 10]);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new Ring(0)).toThrow(RangeError);
    expect(() => new Ring(1.5)).toThrow(RangeError);
  });
});

describe('SeriesRing', () => {
  it('holds at most its capacity (an hour at one point per 5 s) however long it runs, at a fixed cost', () => {
    const s = new SeriesRing(720, 5_000);
    const bytes = s.bytes;
    expect(bytes).toBe(8 * 720 * 8);
    for (let i = 0; i < 10_000; i++) s.push(point(i));
    expect(s.size).toBe(720);
    expect(s.bytes).toBe(bytes);
    const series = s.toSeries();
    expect(series.at.length).toBe(720);
    expect(series.at[0]).toBe(10_000 - 720);
    expect(series.at[719]).toBe(9_999);
    expect(series.memCommitted[719]).toBe(9_999);
    expect(series.memUsed[0]).toBe((10_000 - 720) / 2);
    expect(series.everyMs).toBe(5_000);
    expect(series.capacity).toBe(720);
  });

  it('returns the points in order before it wraps', () => {
    const s = new SeriesRing(4, 1_000);
    s.push(point(1));
    s.push(point(2));
    expect(s.toSeries().at).toEqual([1, 2]);
    for (let i = 3; i <= 6; i++) s.push(point(i));
    expect(s.toSeries().at).toEqual([3, 4, 5, 6]);
  });
});
