import { readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeValue } from './codec.ts';
import { prepareFrame, sealFrame } from './framing.ts';
import { openLedger, type SegmentIo } from './index.ts';
import { nodeSegmentIo } from './segment-file.ts';
import { tempDir } from './testing/temp-dir.ts';

/*
 * Group commit and the remaining recovery paths: compaction waiting for durability, close waiting for the disk,
 * rotation between two batches of one burst, records and snapshots that pass their CRC but do not decode.
 * Written against the survivors of a mutation run (docs/benchmarks.md, Mutation testing).
 */

const seg = (seq: number): string => `log-${String(seq).padStart(20, '0')}.bin`;
const snap = (seq: number): string => `snap-${String(seq).padStart(20, '0')}.bin`;

const cleanups: Array<() => void> = [];
function freshDir(): string {
  const t = tempDir();
  cleanups.push(t.remove);
  return t.dir;
}
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A disk whose writes wait until the test opens the gate (a stalled disk); `failNext` makes the next write fail. */
function gatedDisk(): { io: SegmentIo; open: () => void; waiting: () => number; failNext: (e: Error) => void } {
  const gate: Array<() => void> = [];
  let opened = false;
  let failure: Error | undefined;
  const io: SegmentIo = {
    async openSegment(path, create) {
      const file = await nodeSegmentIo.openSegment(path, create);
      return {
        durableWrites: true,
        write: async (b, p) => {
          if (!opened) await new Promise<void>((resolve) => gate.push(resolve));
          if (failure !== undefined) throw failure;
          return file.write(b, p);
        },
        datasync: () => file.datasync(),
        close: () => file.close(),
      };
    },
  };
  return {
    io,
    open: () => {
      opened = true;
      for (const r of gate.splice(0)) r();
    },
    waiting: () => gate.length,
    failNext: (e) => {
      failure = e;
      opened = true;
      for (const r of gate.splice(0)) r();
    },
  };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('group commit', () => {
  it('a compaction waits until the records it covers are durable', async () => {
    const dir = freshDir();
    const disk = gatedDisk();
    const { ledger } = await openLedger(dir, { io: disk.io });
    const appended = [ledger.append({ n: 1 }), ledger.append({ n: 2 })];
    const compacted = ledger.compact({ upto: 2 });
    await tick();
    expect(disk.waiting()).toBe(1);
    expect(readdirSync(dir)).not.toContain(snap(2));
    disk.open();
    expect(await Promise.all(appended)).toEqual([1, 2]);
    expect((await compacted).snapshotSeq).toBe(2);
    expect(readdirSync(dir)).toContain(snap(2));
    await ledger.close();
  });

  it('a compaction waiting for a write that fails rejects with failed', async () => {
    const dir = freshDir();
    const disk = gatedDisk();
    const { ledger } = await openLedger(dir, { io: disk.io });
    const appended = ledger.append({ n: 1 }).catch((e: unknown) => e);
    const compacted = ledger.compact({ upto: 1 }).catch((e: unknown) => e);
    await tick();
    disk.failNext(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }));
    expect(await appended).toMatchObject({ code: 'failed', details: { durableSeq: 0 } });
    const error = await compacted;
    expect(error).toMatchObject({ code: 'failed' });
    expect((error as Error).message).toBe('ledger write failed, reopen it from disk: EIO: i/o error, write');
    expect(ledger.stats().state).toBe('failed');
    await ledger.close();
  });

  it('close waits for the records still on their way to the disk', async () => {
    const dir = freshDir();
    const disk = gatedDisk();
    const { ledger } = await openLedger(dir, { io: disk.io });
    const appended = ledger.append({ n: 1 });
    let closed = false;
    const closing = ledger.close().then(() => (closed = true));
    await tick();
    expect(closed).toBe(false);
    disk.open();
    await closing;
    expect(await appended).toBe(1);
    const reopened = await openLedger<{ n: number }>(dir);
    expect(reopened.records.map((r) => r.record.n)).toEqual([1]);
    await reopened.ledger.close();
  });

  it('puts the records before a rotation in the old segment and those after it in the new one, within one burst', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    const first = [1, 2, 3].map((n) => ledger.append({ n }));
    const compacted = ledger.compact({ upto: 3 });
    const second = [4, 5].map((n) => ledger.append({ n }));
    expect(await Promise.all([...first, ...second])).toEqual([1, 2, 3, 4, 5]);
    await compacted;
    expect(ledger.stats()).toMatchObject({ fsyncs: 2, segments: 2, snapshotSeq: 3 });
    await ledger.close();
    const reopened = await openLedger<{ n: number }>(dir);
    expect(reopened.records.map((r) => r.record.n)).toEqual([4, 5]);
    expect(reopened.stats.segments).toBe(2);
    await reopened.ledger.close();
    // log-4 holds exactly records 4 and 5: opening without the snapshot reads 1-3 from log-1.
    expect(statSync(join(dir, seg(4))).size).toBeGreaterThan(0);
  });

  it('counts each group commit and how long it took', async () => {
    const dir = freshDir();
    const slow: SegmentIo = {
      async openSegment(path, create) {
        const file = await nodeSegmentIo.openSegment(path, create);
        return {
          durableWrites: true,
          write: async (b, p) => (await new Promise((r) => setTimeout(r, 10)), file.write(b, p)),
          datasync: () => file.datasync(),
          close: () => file.close(),
        };
      },
    };
    const { ledger } = await openLedger(dir, { io: slow });
    for (let n = 1; n <= 3; n += 1) await ledger.append({ n });
    const stats = ledger.stats();
    expect(stats.fsyncs).toBe(3);
    expect(stats.recordsPerFsync).toBe(1);
    expect(stats.fsyncLatencyMs.max).toBeGreaterThanOrEqual(8);
    expect(stats.fsyncLatencyMs.max).toBeLessThan(5_000);
    await ledger.close();
  });
});

describe('recovery of records that pass their CRC', () => {
  /** A sealed frame whose payload is cut-short msgpack (an array of two holding one item). */
  const undecodable = (seq: number, batchOffset: number): Buffer => {
    const frame = prepareFrame(seq, Buffer.from([0x92, 0x01]));
    sealFrame(frame, batchOffset);
    return frame;
  };

  it('refuses a record that passes its CRC but does not decode', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    await ledger.append({ n: 1 });
    await ledger.close();
    writeFileSync(join(dir, seg(1)), Buffer.concat([readFileSync(join(dir, seg(1))), undecodable(2, 0)]));
    const refused = await openLedger(dir).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'corrupt', details: { segment: seg(1), seq: 2 } });
    expect((refused as Error).message).toContain(`record 2 in ${seg(1)} passes its CRC but does not decode`);
  });

  it('skips a snapshot that passes its CRC but does not decode, and replays the log instead', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    for (let n = 1; n <= 3; n += 1) await ledger.append({ n });
    await ledger.compact({ upto: 3 });
    await ledger.close();
    writeFileSync(join(dir, snap(3)), undecodable(3, 0));
    const opened = await openLedger<{ n: number }>(dir);
    expect(opened.snapshot).toBeUndefined();
    expect(opened.stats.snapshotsSkipped).toBe(1);
    expect(opened.records.map((r) => r.record.n)).toEqual([1, 2, 3]);
    await opened.ledger.close();
  });

  it('reads back a record exactly maxRecordBytes long', async () => {
    const dir = freshDir();
    const record = { blob: 'x'.repeat(100) };
    const size = encodeValue(record).length;
    const { ledger } = await openLedger(dir, { maxRecordBytes: size });
    expect(await ledger.append(record)).toBe(1);
    await ledger.close();
    const reopened = await openLedger<typeof record>(dir, { maxRecordBytes: size });
    expect(reopened.records.map((r) => r.record)).toEqual([record]);
    await reopened.ledger.close();
  });

  it('counts the bytes since the snapshot after a reopen', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    await ledger.append({ n: 1 });
    const before = ledger.stats().bytesOnDisk;
    await ledger.append({ n: 2 });
    await ledger.append({ n: 3 });
    const recordBytes = ledger.stats().bytesOnDisk - before;
    await ledger.close();
    const reopened = await openLedger(dir);
    expect(reopened.ledger.stats().bytesSinceSnapshot).toBe(before + recordBytes);
    await reopened.ledger.close();
  });
});

describe('torn and damaged tails', () => {
  it('discards a torn first record and says so', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    await ledger.append({ n: 1, pad: 'x'.repeat(30) });
    await ledger.close();
    const size = statSync(join(dir, seg(1))).size;
    truncateSync(join(dir, seg(1)), size - 3);
    const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const opened = await openLedger(dir, {
      logger: { info: () => undefined, warn: (fields, message) => warnings.push({ fields, message }) },
    });
    expect(opened.records).toEqual([]);
    expect(opened.stats.bytesDiscarded).toBe(size - 3);
    expect(warnings).toContainEqual({
      message: 'ledger: torn tail discarded',
      fields: expect.objectContaining({ segment: seg(1), bytesDiscarded: size - 3, lastSeq: 0 }),
    });
    expect(await opened.ledger.append({ n: 1 })).toBe(1);
    await opened.ledger.close();
  });

  it('calls damage corruption when a record of a later batch follows, even past an intact record of the damaged batch', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    await ledger.append({ n: 1 });
    const second = ledger.stats().bytesOnDisk;
    await Promise.all([ledger.append({ n: 2 }), ledger.append({ n: 3 })]);
    const fourth = ledger.stats().bytesOnDisk;
    await ledger.append({ n: 4 });
    await ledger.close();
    const bytes = readFileSync(join(dir, seg(1)));
    bytes[second + 21] = (bytes[second + 21] as number) ^ 0xff; // inside record 2's payload
    writeFileSync(join(dir, seg(1)), bytes);
    const refused = await openLedger(dir).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'corrupt', details: { expectedSeq: 2, laterSeq: 4, laterOffset: fourth, lastGoodSeq: 1 } });
    expect((refused as Error).message).toContain('refusing to open (repair: true keeps records up to 1)');
  });

  it('sets the damaged bytes aside in a file only the owner can read', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    for (let n = 1; n <= 3; n += 1) await ledger.append({ n });
    await ledger.close();
    const bytes = readFileSync(join(dir, seg(1)));
    bytes[25] = (bytes[25] as number) ^ 0xff; // record 1's payload
    writeFileSync(join(dir, seg(1)), bytes);
    const repaired = await openLedger(dir, { repair: true });
    expect(repaired.records).toEqual([]);
    await repaired.ledger.close();
    const aside = readdirSync(dir).find((n) => n.endsWith('.discarded'));
    expect(aside).toBeDefined();
    expect(statSync(join(dir, aside as string)).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, aside as string))).toEqual(bytes);
  });
});
