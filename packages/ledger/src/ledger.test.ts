import { readdirSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LedgerError, openLedger, type Ledger, type SegmentIo } from './index.ts';
import { nodeSegmentIo } from './segment-file.ts';
import { tempDir } from './testing/temp-dir.ts';

interface Rec {
  n: number;
  kind: string;
}

const cleanups: Array<() => void> = [];
function freshDir(): string {
  const t = tempDir();
  cleanups.push(t.remove);
  return t.dir;
}
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
}

async function appendMany(ledger: Ledger<Rec, unknown>, from: number, count: number): Promise<number[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => ledger.append({ n: from + i, kind: 'allocate' })));
}

describe('ledger', () => {
  it('returns every appended record, in order, after a reopen', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger<Rec>(dir);
    const seqs = await appendMany(ledger, 1, 300);
    for (let n = 301; n <= 350; n += 1) await ledger.append({ n, kind: 'release' });
    expect(seqs).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    await ledger.close();

    const reopened = await openLedger<Rec>(dir);
    expect(reopened.snapshot).toBeUndefined();
    expect(reopened.records.map((r) => r.seq)).toEqual(Array.from({ length: 350 }, (_, i) => i + 1));
    expect(reopened.records.every((r) => r.record.n === r.seq)).toBe(true);
    expect(reopened.stats).toMatchObject({ recordsReplayed: 350, bytesDiscarded: 0 });
    expect(reopened.ledger.lastSeq).toBe(350);
    expect(await reopened.ledger.append({ n: 351, kind: 'allocate' })).toBe(351);
    await reopened.ledger.close();
  });

  it('after a compaction, a reopen returns the snapshot and only the later records', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger<Rec, { total: number }>(dir);
    await appendMany(ledger, 1, 100);
    const compaction = ledger.compact({ total: 100 }, ledger.lastSeq);
    // Appended while the compaction runs: these belong after the snapshot.
    const later = appendMany(ledger, 101, 20);
    expect(await compaction).toMatchObject({ snapshotSeq: 100 });
    await later;
    await ledger.close();

    const reopened = await openLedger<Rec, { total: number }>(dir);
    expect(reopened.snapshot).toEqual({ seq: 100, state: { total: 100 } });
    expect(reopened.records.map((r) => r.record.n)).toEqual(Array.from({ length: 20 }, (_, i) => 101 + i));
    expect(reopened.stats.snapshotSeq).toBe(100);
    await reopened.ledger.close();
  });

  it('keeps disk use bounded under append and compact churn', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger<Rec, { total: number }>(dir, { compactAfterRecords: 500 });
    const sizes: number[] = [];
    let compactions = 0;
    let perRecord = 0;
    for (let round = 0; round < 40; round += 1) {
      await appendMany(ledger, ledger.lastSeq + 1, 250);
      if (round === 0) perRecord = ledger.stats().bytesOnDisk / 250;
      if (ledger.shouldCompact()) {
        await ledger.compact({ total: ledger.lastSeq });
        compactions += 1;
      }
      sizes.push(dirBytes(dir));
    }
    expect(compactions).toBeGreaterThanOrEqual(15);
    // 10,000 records appended; at most two generations (about 1,000 records plus snapshots) ever stay on disk.
    expect(Math.max(...sizes)).toBeLessThan(perRecord * 1_600);
    // bytesOnDisk counts records and snapshots; the lock and the format marker are not the ledger's data.
    expect(ledger.stats().bytesOnDisk).toBe(dirBytes(dir) - statSync(join(dir, 'LOCK')).size - statSync(join(dir, 'FORMAT')).size);
    await ledger.close();
    const reopened = await openLedger<Rec, { total: number }>(dir);
    expect(reopened.snapshot?.state.total).toBe(reopened.snapshot?.seq);
    expect(reopened.ledger.lastSeq).toBe(10_000);
    await reopened.ledger.close();
  });

  it('says when to compact, by records and by bytes', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger<Rec>(dir, { compactAfterRecords: 10, compactAfterBytes: 1 << 30 });
    await appendMany(ledger, 1, 9);
    expect(ledger.shouldCompact()).toBe(false);
    await ledger.append({ n: 10, kind: 'x' });
    expect(ledger.shouldCompact()).toBe(true);
    const compaction = ledger.compact({});
    expect(ledger.shouldCompact()).toBe(false); // not again while one is being written
    await compaction;
    expect(ledger.shouldCompact()).toBe(false);
    await ledger.close();

    const bytes = await openLedger<{ blob: string }>(freshDir(), { compactAfterRecords: 1_000_000, compactAfterBytes: 10_000 });
    await bytes.ledger.append({ blob: 'x'.repeat(5_000) });
    expect(bytes.ledger.shouldCompact()).toBe(false);
    await bytes.ledger.append({ blob: 'x'.repeat(5_000) });
    expect(bytes.ledger.shouldCompact()).toBe(true);
    await bytes.ledger.close();
  });

  it('waits, after a large snapshot, until the records since it are as large, so the state is not re-encoded every few records', async () => {
    const { ledger } = await openLedger<{ blob: string }, { blob: string }>(freshDir(), {
      compactAfterRecords: 10,
      compactAfterBytes: 1 << 30,
    });
    for (let i = 0; i < 10; i += 1) await ledger.append({ blob: 'r'.repeat(100) });
    expect(ledger.shouldCompact()).toBe(true);
    await ledger.compact({ blob: 's'.repeat(50_000) });
    // 10 more records are due by count, but 1 KiB of records is no reason to write a 50 KB snapshot again.
    for (let i = 0; i < 10; i += 1) await ledger.append({ blob: 'r'.repeat(100) });
    expect(ledger.shouldCompact()).toBe(false);
    while (!ledger.shouldCompact()) await ledger.append({ blob: 'r'.repeat(100) });
    expect(ledger.stats().bytesOnDisk).toBeGreaterThan(100_000);
    await ledger.close();
  });

  it('shares fsyncs between concurrent appends (group commit)', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger<Rec>(dir);
    const writers = 64;
    const each = 40;
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < each; i += 1) await ledger.append({ n: w * each + i, kind: 'allocate' });
      }),
    );
    const stats = ledger.stats();
    expect(stats.durableSeq).toBe(writers * each);
    expect(stats.fsyncs * 8).toBeLessThanOrEqual(writers * each);
    expect(stats.recordsPerFsync).toBeGreaterThanOrEqual(8);
    await ledger.close();
  });

  it('resolves appends in seq order, never a later record before an earlier one', async () => {
    const { ledger } = await openLedger<Rec>(freshDir());
    const resolved: number[] = [];
    await Promise.all(Array.from({ length: 500 }, (_, i) => ledger.append({ n: i, kind: 'x' }).then((seq) => resolved.push(seq))));
    expect(resolved).toEqual([...resolved].sort((a, b) => a - b));
    await ledger.close();
  });

  it('refuses a second open of the same directory with locked, and allows it after close', async () => {
    const dir = freshDir();
    const first = await openLedger(dir);
    await expect(openLedger(dir)).rejects.toMatchObject({ code: 'locked', details: { pid: process.pid } });
    await first.ledger.close();
    const second = await openLedger(dir);
    await second.ledger.close();
  });

  it('takes over a lock left by a process that is gone', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'LOCK'), JSON.stringify({ pid: 2 ** 22 + 12345 }));
    const { ledger } = await openLedger(dir);
    expect(JSON.parse(readFileSync(join(dir, 'LOCK'), 'utf8')).pid).toBe(process.pid);
    await ledger.close();
  });

  it('refuses appends after close with closed, and flushes what was accepted before', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger<Rec>(dir);
    const pending = appendMany(ledger, 1, 50);
    await ledger.close();
    expect(await pending).toHaveLength(50);
    await expect(ledger.append({ n: 51, kind: 'x' })).rejects.toMatchObject({ code: 'closed' });
    const reopened = await openLedger(dir);
    expect(reopened.records).toHaveLength(50);
    await reopened.ledger.close();
  });

  it('refuses a record larger than maxRecordBytes with too_large and assigns it no seq', async () => {
    const { ledger } = await openLedger<{ blob: string }>(freshDir(), { maxRecordBytes: 1000 });
    await expect(ledger.append({ blob: 'x'.repeat(2000) })).rejects.toMatchObject({ code: 'too_large', details: { maxRecordBytes: 1000 } });
    expect(ledger.lastSeq).toBe(0);
    expect(await ledger.append({ blob: 'small' })).toBe(1);
    await ledger.close();
  });

  it('refuses appends with overloaded when the bytes waiting for the disk reach maxQueueBytes', async () => {
    const { ledger } = await openLedger<{ blob: string }>(freshDir(), { maxQueueBytes: 10_000 });
    const accepted = Array.from({ length: 5 }, () => ledger.append({ blob: 'x'.repeat(1_500) }));
    const refused = ledger.append({ blob: 'x'.repeat(3_000) });
    await expect(refused).rejects.toMatchObject({ code: 'overloaded', details: { maxQueueBytes: 10_000 } });
    expect(await Promise.all(accepted)).toEqual([1, 2, 3, 4, 5]);
    expect(await ledger.append({ blob: 'x' })).toBe(6);
    await ledger.close();
  });

  it('fails for good after an fsync error: pending and later appends reject with failed, the disk keeps what was durable', async () => {
    const dir = freshDir();
    let syncs = 0;
    const failing: SegmentIo = {
      async openSegment(path, create) {
        const file = await nodeSegmentIo.openSegment(path, create);
        return {
          write: (b, p) => file.write(b, p),
          datasync: async () => {
            syncs += 1;
            if (syncs === 3) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
            return file.datasync();
          },
          close: () => file.close(),
        };
      },
    };
    const { ledger } = await openLedger<Rec>(dir, { io: failing });
    expect(await ledger.append({ n: 1, kind: 'x' })).toBe(1);
    expect(await ledger.append({ n: 2, kind: 'x' })).toBe(2);
    const doomed = appendMany(ledger, 3, 10);
    const error: unknown = await doomed.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LedgerError);
    expect(error).toMatchObject({ code: 'failed', details: { durableSeq: 2 } });
    await expect(ledger.append({ n: 99, kind: 'x' })).rejects.toMatchObject({ code: 'failed' });
    await expect(ledger.compact({})).rejects.toMatchObject({ code: 'failed' });
    expect(ledger.stats().state).toBe('failed');
    await ledger.close();

    const reopened = await openLedger<Rec>(dir);
    expect(reopened.records.slice(0, 2).map((r) => r.seq)).toEqual([1, 2]);
    await reopened.ledger.close();
  });

  it('falls back to the previous snapshot when the newest one is damaged', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger<Rec, { total: number }>(dir);
    await appendMany(ledger, 1, 30);
    await ledger.compact({ total: 30 });
    await appendMany(ledger, 31, 30);
    await ledger.compact({ total: 60 });
    await appendMany(ledger, 61, 5);
    await ledger.close();

    const newest = join(dir, 'snap-00000000000000000060.bin');
    const bytes = readFileSync(newest);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
    writeFileSync(newest, bytes);

    const reopened = await openLedger<Rec, { total: number }>(dir);
    expect(reopened.snapshot).toEqual({ seq: 30, state: { total: 30 } });
    expect(reopened.records.map((r) => r.seq)).toEqual(Array.from({ length: 35 }, (_, i) => 31 + i));
    expect(reopened.stats.snapshotsSkipped).toBe(1);
    await reopened.ledger.close();
  });
});
