import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openLedger } from './ledger.ts';

describe('onFsync', () => {
  it('is told each group commit: its latency and how many records it made durable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'allot-ledger-fsync-'));
    const calls: Array<[number, number]> = [];
    try {
      const { ledger } = await openLedger(dir, { onFsync: (ms, records) => calls.push([ms, records]) });
      await Promise.all([ledger.append({ a: 1 }), ledger.append({ a: 2 }), ledger.append({ a: 3 })]);
      await ledger.append({ a: 4 });
      await ledger.close();
      expect(calls.reduce((n, [, records]) => n + records, 0)).toBe(4);
      for (const [ms, records] of calls) {
        expect(ms).toBeGreaterThanOrEqual(0);
        expect(records).toBeGreaterThanOrEqual(1);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a throwing hook does not fail the writer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'allot-ledger-fsync-'));
    try {
      const { ledger } = await openLedger(dir, {
        onFsync: () => {
          throw new Error('metrics down');
        },
      });
      await expect(ledger.append({ a: 1 })).resolves.toBe(1);
      await ledger.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
