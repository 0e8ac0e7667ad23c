import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Coalescer } from './coalescer.ts';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

function recorder(result: () => boolean = () => true) {
  const published: number[] = [];
  return { published, publish: async (s: number) => (published.push(s), result()) };
}

describe('Coalescer', () => {
  it('publishes the first state at once and then at most once per interval, always the latest state', async () => {
    const r = recorder();
    const c = new Coalescer<number>({ minIntervalMs: 1_000, heartbeatMs: 60_000, publish: r.publish });
    c.update(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(r.published).toEqual([1]);
    for (let i = 2; i <= 50; i++) c.update(i);
    await vi.advanceTimersByTimeAsync(999);
    expect(r.published).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1);
    expect(r.published).toEqual([1, 50]);
    c.stop();
  });

  it('repeats the latest state as a heartbeat when nothing changed', async () => {
    const r = recorder();
    const c = new Coalescer<number>({ minIntervalMs: 100, heartbeatMs: 5_000, publish: r.publish });
    c.update(7);
    await vi.advanceTimersByTimeAsync(15_000);
    expect(r.published).toEqual([7, 7, 7, 7]);
    expect(c.counts).toMatchObject({ published: 4, heartbeats: 3 });
    c.stop();
  });

  it('publishes again after a failed publish', async () => {
    let fail = true;
    const r = recorder(() => !fail);
    const c = new Coalescer<number>({ minIntervalMs: 100, heartbeatMs: 60_000, publish: r.publish });
    c.update(1);
    await vi.advanceTimersByTimeAsync(0);
    fail = false;
    await vi.advanceTimersByTimeAsync(100);
    expect(r.published).toEqual([1, 1]);
    expect(c.counts).toMatchObject({ published: 1, failed: 1 });
    c.stop();
  });

  it('publishes nothing after stop', async () => {
    const r = recorder();
    const c = new Coalescer<number>({ minIntervalMs: 100, heartbeatMs: 1_000, publish: r.publish });
    c.stop();
    c.update(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(r.published).toEqual([]);
  });

  it('flush publishes the pending state without waiting for the interval', async () => {
    const r = recorder();
    const c = new Coalescer<number>({ minIntervalMs: 10_000, heartbeatMs: 60_000, publish: r.publish });
    c.update(1);
    await vi.advanceTimersByTimeAsync(0);
    c.update(2);
    await c.flush();
    expect(r.published).toEqual([1, 2]);
    c.stop();
  });

  it('publishes a change on time after the wall clock steps back an hour (its intervals are monotonic)', async () => {
    const r = recorder();
    const c = new Coalescer<number>({ minIntervalMs: 100, heartbeatMs: 5_000, publish: r.publish });
    c.update(1);
    await vi.advanceTimersByTimeAsync(0);
    vi.setSystemTime(Date.now() - 3_600_000);
    c.update(2);
    await vi.advanceTimersByTimeAsync(100);
    expect(r.published).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(r.published).toEqual([1, 2, 2]);
    c.stop();
  });
});
