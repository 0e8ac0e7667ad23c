import { afterAll, describe, expect, it } from 'vitest';
import { cleanupAll } from '../harness/index.ts';
import { describeVerdict, fuzzCluster, startFuzzCluster } from './session.ts';

afterAll(async () => {
  await cleanupAll();
});

describe('the wire fuzzer against a real cluster (CI size)', () => {
  it('sends 20,000 hostile messages: no process exits, every request gets a typed reply, nothing changes', async () => {
    const cluster = await startFuzzCluster();
    const verdict = await fuzzCluster(cluster, { count: 20_000, seed: 12, timeLimitMs: 90_000 });
    console.log(describeVerdict(verdict));
    expect(verdict.exited).toEqual([]);
    expect(verdict.stillServing).toBe(true);
    expect(verdict.report.findings).toEqual([]);
    expect(verdict.after).toEqual(verdict.before);
    expect(verdict.report.sent).toBeGreaterThanOrEqual(20_000 * 0.6);
  }, 240_000);
});
