import { readdirSync, readFileSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openLedger, type SegmentIo } from './index.ts';
import { nodeSegmentIo } from './segment-file.ts';
import { tempDir } from './testing/temp-dir.ts';

/*
 * Recovery, framing and group commit at their edges: short writes, missing and misnumbered segments, a log cut before
 * its snapshot, damage followed by a later batch. Written against the survivors of a mutation run (docs/benchmarks.md).
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

/** A disk that writes at most `chunk` bytes per call, as pwrite(2) may. */
function shortWrites(chunk: number, calls: number[]): SegmentIo {
  return {
    async openSegment(path, create) {
      const file = await nodeSegmentIo.openSegment(path, create);
      return {
        write: (b, p) => {
          calls.push(p);
          return file.write(b.subarray(0, Math.min(chunk, b.length)), p);
        },
        datasync: () => file.datasync(),
        close: () => file.close(),
      };
    },
  };
}

/** Records 1..5 in log-1, a snapshot at 2 and one at 3 (both taken while 5 was the last record), 6..8 in log-6, 9 in log-9. */
async function threeSegments(): Promise<string> {
  const dir = freshDir();
  const { ledger } = await openLedger(dir);
  for (let n = 1; n <= 5; n += 1) await ledger.append({ n });
  await ledger.compact({ upto: 2 }, 2);
  for (let n = 6; n <= 8; n += 1) await ledger.append({ n });
  await ledger.compact({ upto: 3 }, 3);
  await ledger.append({ n: 9 });
  await ledger.close();
  expect(
    readdirSync(dir)
      .filter((n) => n !== 'LOCK' && n !== 'FORMAT')
      .sort(),
  ).toEqual([seg(1), seg(6), seg(9), snap(2), snap(3)].sort());
  return dir;
}

describe('ledger writes', () => {
  it('keeps every record intact when the disk accepts only a few bytes per write', async () => {
    const dir = freshDir();
    const positions: number[] = [];
    const { ledger } = await openLedger<{ n: number; pad: string }>(dir, { io: shortWrites(7, positions) });
    const seqs = await Promise.all(Array.from({ length: 6 }, (_, i) => ledger.append({ n: i + 1, pad: 'x'.repeat(i * 5) })));
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6]);
    const onDisk = statSync(join(dir, seg(1))).size;
    expect(ledger.stats().bytesOnDisk).toBe(onDisk);
    // Each write continues at the byte where the previous one stopped.
    expect(positions).toEqual(Array.from({ length: positions.length }, (_, i) => i * 7));
    expect(await ledger.append({ n: 7, pad: '' })).toBe(7);
    await ledger.close();

    const reopened = await openLedger<{ n: number; pad: string }>(dir);
    expect(reopened.records.map((r) => r.record.n)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(reopened.stats.bytesDiscarded).toBe(0);
    await reopened.ledger.close();
  });

  it('fails for good when a write makes no progress, naming the byte, and keeps what was durable', async () => {
    const dir = freshDir();
    let writes = 0;
    const stuck: SegmentIo = {
      async openSegment(path, create) {
        const file = await nodeSegmentIo.openSegment(path, create);
        return {
          write: async (b, p) => (++writes >= 3 ? 0 : file.write(b, p)),
          datasync: () => file.datasync(),
          close: () => file.close(),
        };
      },
    };
    const { ledger } = await openLedger(dir, { io: stuck });
    await ledger.append({ n: 1 });
    await ledger.append({ n: 2 });
    const at = ledger.stats().bytesOnDisk;
    const error = await ledger.append({ n: 3 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'failed', details: { durableSeq: 2 } });
    expect((error as Error).message).toContain(`write made no progress at byte ${at}`);
    await expect(ledger.append({ n: 4 })).rejects.toMatchObject({ code: 'failed' });
    await ledger.close();
  });
});

describe('ledger recovery', () => {
  it('refuses to open when a middle segment is missing, naming the gap', async () => {
    const dir = await threeSegments();
    unlinkSync(join(dir, snap(3)));
    unlinkSync(join(dir, seg(6)));
    const refused = await openLedger(dir).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'corrupt', details: { segment: seg(9), expectedSeq: 6 } });
    expect((refused as Error).message).toContain(`${seg(9)} starts at 9 but the previous segment ends at 5`);
  });

  it('replays every segment after the snapshot, in order, and continues in the last one', async () => {
    const dir = await threeSegments();
    const opened = await openLedger<{ n: number }>(dir);
    expect(opened.snapshot).toEqual({ seq: 3, state: { upto: 3 } });
    expect(opened.records.map((r) => r.seq)).toEqual([4, 5, 6, 7, 8, 9]);
    expect(opened.records.map((r) => r.record.n)).toEqual([4, 5, 6, 7, 8, 9]);
    expect(opened.stats).toMatchObject({ segments: 3, snapshotSeq: 3, recordsReplayed: 6, bytesDiscarded: 0 });
    const last = statSync(join(dir, seg(9))).size;
    expect(await opened.ledger.append({ n: 10 })).toBe(10);
    await opened.ledger.close();
    expect(statSync(join(dir, seg(9))).size).toBeGreaterThan(last);
  });

  it('with repair, sets aside the tail of the damaged segment and every later segment, and counts their bytes', async () => {
    const dir = await threeSegments();
    const sizes = {
      first: statSync(join(dir, seg(1))).size,
      six: statSync(join(dir, seg(6))).size,
      nine: statSync(join(dir, seg(9))).size,
    };
    // Record 4 of log-1 damaged: 4 and 5, then log-6 and log-9, are after the damage.
    const bytes = readFileSync(join(dir, seg(1)));
    const recordSize = sizes.first / 5;
    bytes[Math.floor(recordSize * 3.5)] = (bytes[Math.floor(recordSize * 3.5)] as number) ^ 0xff;
    writeFileSync(join(dir, seg(1)), bytes);
    const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const logger = {
      info: () => undefined,
      warn: (fields: Record<string, unknown>, message: string) => warnings.push({ fields, message }),
    };

    await expect(openLedger(dir)).rejects.toMatchObject({ code: 'corrupt', details: { segment: seg(1), lastGoodSeq: 3 } });
    const repaired = await openLedger<{ n: number }>(dir, { repair: true, logger });
    expect(repaired.snapshot?.seq).toBe(3);
    expect(repaired.records).toEqual([]);
    expect(repaired.stats.bytesDiscarded).toBe(sizes.first - recordSize * 3 + sizes.six + sizes.nine);
    expect(repaired.stats.segments).toBe(1);
    expect(warnings.map((w) => w.message)).toContain('ledger: repaired, records after the damage set aside');
    const names = readdirSync(dir);
    expect(names.filter((n) => n.endsWith('.discarded'))).toHaveLength(3);
    expect(names).not.toContain(seg(6));
    expect(names).not.toContain(seg(9));
    expect(statSync(join(dir, seg(1))).size).toBe(recordSize * 3);
    // Appends continue right after the last good record, in the repaired segment.
    expect(await repaired.ledger.append({ n: 4 })).toBe(4);
    await repaired.ledger.close();
    const again = await openLedger<{ n: number }>(dir);
    expect(again.records.map((r) => r.seq)).toEqual([4]);
    await again.ledger.close();
  });

  it('refuses a valid record carrying the wrong seq, naming both', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    await ledger.append({ n: 1 });
    await ledger.append({ n: 2 });
    await ledger.close();
    const bytes = readFileSync(join(dir, seg(1)));
    // The same two records again: the third frame is whole and passes its CRC but says seq 1.
    writeFileSync(join(dir, seg(1)), Buffer.concat([bytes, bytes]));
    const refused = await openLedger(dir).catch((e: unknown) => e);
    expect(refused).toMatchObject({
      code: 'corrupt',
      details: { segment: seg(1), offset: bytes.length, seq: 1, expectedSeq: 3, lastGoodSeq: 2 },
    });
    expect((refused as Error).message).toContain(`record at byte ${bytes.length} has seq 1, expected 3`);
  });

  it('refuses a damaged record followed by one of a later batch, naming both', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    await ledger.append({ n: 1 });
    const second = ledger.stats().bytesOnDisk;
    await ledger.append({ n: 2 });
    const third = ledger.stats().bytesOnDisk;
    await ledger.append({ n: 3 });
    await ledger.close();
    const bytes = readFileSync(join(dir, seg(1)));
    bytes[third - 1] = (bytes[third - 1] as number) ^ 0x01; // the last payload byte of record 2
    writeFileSync(join(dir, seg(1)), bytes);
    const refused = await openLedger(dir).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'corrupt', details: { offset: second, expectedSeq: 2, laterSeq: 3, laterOffset: third } });
    expect((refused as Error).message).toContain(
      `record 2 at byte ${second} is bad but record 3 of a later batch follows at byte ${third}`,
    );
  });

  it('calls a cut inside a complete segment short, and an overlong length bad', async () => {
    const dir = await threeSegments();
    unlinkSync(join(dir, snap(3)));
    unlinkSync(join(dir, snap(2)));
    truncateSync(join(dir, seg(1)), statSync(join(dir, seg(1))).size - 1);
    await expect(openLedger(dir)).rejects.toThrow(/record 5 at byte \d+ is short in a segment that was complete/);

    const other = await threeSegments();
    unlinkSync(join(other, snap(3)));
    unlinkSync(join(other, snap(2)));
    const bytes = readFileSync(join(other, seg(1)));
    bytes.writeUInt32LE(2 ** 31, 4); // record 1 claims a 2 GiB payload
    writeFileSync(join(other, seg(1)), bytes);
    await expect(openLedger(other)).rejects.toMatchObject({ code: 'corrupt', details: { offset: 0, expectedSeq: 1, lastGoodSeq: 0 } });
    await expect(openLedger(other)).rejects.toThrow(/record 1 at byte 0 is bad/);
  });

  it('starts a fresh segment after the snapshot when the log was cut before it (records the snapshot covers)', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    await ledger.append({ n: 1 });
    await ledger.append({ n: 2 });
    const third = ledger.stats().bytesOnDisk;
    for (let n = 3; n <= 5; n += 1) await ledger.append({ n });
    await ledger.compact({ upto: 3 }, 3);
    await ledger.close();
    // Records 3 to 5 lost with their segment's tail and the empty segment after it: the snapshot still covers 3.
    unlinkSync(join(dir, seg(6)));
    truncateSync(join(dir, seg(1)), third + 4);
    const warnings: string[] = [];
    const opened = await openLedger<{ n: number }>(dir, { logger: { info: () => undefined, warn: (_f, m) => warnings.push(m) } });
    expect(opened.snapshot?.seq).toBe(3);
    expect(opened.records).toEqual([]);
    expect(warnings).toContain('ledger: log ends before the snapshot');
    expect(await opened.ledger.append({ n: 4 })).toBe(4);
    await opened.ledger.close();
    expect(readdirSync(dir)).toContain(seg(4));
    const again = await openLedger<{ n: number }>(dir);
    expect(again.records.map((r) => r.record.n)).toEqual([4]);
    await again.ledger.close();
  });

  it('reuses an empty segment when two compactions follow each other with no append between', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    for (let n = 1; n <= 5; n += 1) await ledger.append({ n });
    await ledger.compact({ upto: 3 }, 3);
    await ledger.compact({ upto: 4 }, 4);
    expect(await ledger.append({ n: 6 })).toBe(6);
    expect(ledger.stats().state).toBe('open');
    await ledger.close();
    const opened = await openLedger<{ n: number }>(dir);
    expect(opened.snapshot?.seq).toBe(4);
    expect(opened.records.map((r) => r.record.n)).toEqual([5, 6]);
    await opened.ledger.close();
  });

  it('sets a damaged snapshot aside under another name and says so', async () => {
    const dir = await threeSegments();
    writeFileSync(join(dir, snap(3)), Buffer.from('not a snapshot'));
    const warnings: string[] = [];
    const opened = await openLedger(dir, { logger: { info: () => undefined, warn: (_f, m) => warnings.push(m) } });
    expect(opened.snapshot?.seq).toBe(2);
    expect(warnings).toContain('ledger: damaged snapshots set aside');
    expect(readdirSync(dir)).not.toContain(snap(3));
    expect(readdirSync(dir).some((n) => n.startsWith(`${snap(3)}.`) && n.endsWith('.discarded'))).toBe(true);
    await opened.ledger.close();
  });
});
