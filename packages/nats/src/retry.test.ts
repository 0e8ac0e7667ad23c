import { describe, expect, it } from 'vitest';
import { backoffDelays, retryWithBackoff } from './retry.ts';

function take(n: number, gen: Generator<number>): number[] {
  return Array.from({ length: n }, () => gen.next().value as number);
}

describe('backoffDelays', () => {
  it('doubles the step up to the cap, each wait between half the step and the step', () => {
    expect(take(7, backoffDelays({ initialMs: 500, maxMs: 10_000, random: () => 0 }))).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000]);
    expect(take(7, backoffDelays({ initialMs: 500, maxMs: 10_000, random: () => 0.999_999 }))).toEqual([
      499, 999, 1999, 3999, 7999, 9999, 9999,
    ]);
  });

  it('spreads a fleet that starts together: 1,000 hosts reconnecting do not wait the same time', () => {
    let seed = 42;
    const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const fourthWaits = Array.from({ length: 1000 }, () => take(4, backoffDelays({ random }))[3] as number);
    // 2,000 possible waits of 1 ms: 1,000 hosts drawing at random land on about 790 distinct ones, not on one.
    expect(new Set(fourthWaits).size).toBeGreaterThan(700);
    expect(Math.min(...fourthWaits)).toBeGreaterThanOrEqual(2000);
    expect(Math.max(...fourthWaits)).toBeLessThan(4000);
  });
});

describe('retryWithBackoff', () => {
  const noSleep = (): Promise<void> => Promise.resolve();

  it('retries what is retryable and returns the first outcome that is not, telling each wait', async () => {
    const waits: Array<[string, number, number]> = [];
    const outcomes = ['unreachable', 'unreachable', 'connected'];
    const result = await retryWithBackoff(async (n) => outcomes[n - 1] as string, {
      retryable: (o) => o === 'unreachable',
      onWait: (o, ms, n) => waits.push([o, ms, n]),
      random: () => 0,
      sleep: noSleep,
    });
    expect(result).toBe('connected');
    expect(waits).toEqual([
      ['unreachable', 250, 1],
      ['unreachable', 500, 2],
    ]);
  });

  it('stops at an outcome that retrying cannot help (a refused credential)', async () => {
    let tries = 0;
    const result = await retryWithBackoff(async () => (++tries, 'auth refused'), { retryable: (o) => o === 'unreachable', sleep: noSleep });
    expect([result, tries]).toEqual(['auth refused', 1]);
  });

  it('ends when stopped, with the last outcome', async () => {
    let tries = 0;
    let stop = false;
    const result = await retryWithBackoff(
      async () => {
        tries += 1;
        if (tries === 3) stop = true;
        return 'unreachable';
      },
      { retryable: () => true, stopped: () => stop, sleep: noSleep },
    );
    expect([result, tries]).toEqual(['unreachable', 3]);
  });

  it('starts no try past its deadline', async () => {
    let tries = 0;
    let clock = 0;
    const sleep = (ms: number): Promise<void> => ((clock += ms), Promise.resolve());
    const result = await retryWithBackoff(async () => (++tries, 'timeout'), {
      retryable: () => true,
      deadlineMs: 1_000,
      initialMs: 400,
      random: () => 0,
      sleep,
      now: () => clock,
    });
    // Waits of 200 and 400 ms fit in 1,000 ms; the third, 800, would end past it.
    expect([result, tries]).toEqual(['timeout', 3]);
  });
});
