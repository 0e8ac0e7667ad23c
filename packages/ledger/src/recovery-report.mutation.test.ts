import { readdirSync, readFileSync, readlinkSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeValue } from './codec.ts';
import { FRAME_HEADER_BYTES, prepareFrame, readFrame, sealFrame } from './framing.ts';
import { openLedger, type LedgerLogger } from './index.ts';
import { tempDir } from './testing/temp-dir.ts';

/*
 * What recovery tells the operator (the warnings and their fields, the reasons a snapshot was set aside, the numbers in
 * a refusal) and what it leaves behind (sizes, open files), plus frames at the edges of their format. Written against
 * the survivors of a mutation run (docs/benchmarks.md, Mutation testing).
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

function recordingLogger(): { logger: LedgerLogger; warnings: Array<{ fields: Record<string, unknown>; message: string }> } {
  const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
  return { logger: { info: () => undefined, warn: (fields, message) => warnings.push({ fields, message }) }, warnings };
}

function bytesOfLedgerFiles(dir: string): number {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.bin'))
    .reduce((sum, n) => sum + statSync(join(dir, n)).size, 0);
}

describe('recovery reports', () => {
  it('opens a ledger whose snapshot is at its last record without a warning', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    for (let n = 1; n <= 3; n += 1) await ledger.append({ n });
    await ledger.compact({ upto: 3 }, 3);
    await ledger.close();
    const { logger, warnings } = recordingLogger();
    const opened = await openLedger(dir, { logger });
    expect(warnings).toEqual([]);
    expect(opened.snapshot?.seq).toBe(3);
    expect(opened.stats.snapshotsSkipped).toBe(0);
    expect(await opened.ledger.append({ n: 4 })).toBe(4);
    await opened.ledger.close();
  });

  it('counts the kept snapshots and their bytes after a reopen', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    for (let n = 1; n <= 3; n += 1) await ledger.append({ n });
    await ledger.compact({ upto: 3, pad: 'x'.repeat(100) }, 3);
    await ledger.append({ n: 4 });
    await ledger.close();
    const opened = await openLedger(dir);
    const stats = opened.ledger.stats();
    expect(stats.snapshots).toBe(1);
    expect(stats.bytesOnDisk).toBe(bytesOfLedgerFiles(dir));
    await opened.ledger.close();
  });

  it('names each damaged snapshot and why in the warning', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    for (let n = 1; n <= 5; n += 1) await ledger.append({ n });
    await ledger.compact({ upto: 5 }, 5);
    await ledger.close();
    const bytes = readFileSync(join(dir, snap(5)));
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
    writeFileSync(join(dir, snap(5)), bytes);
    const { logger, warnings } = recordingLogger();
    const opened = await openLedger<{ n: number }>(dir, { logger });
    expect(opened.records.map((r) => r.record.n)).toEqual([1, 2, 3, 4, 5]);
    expect(warnings).toEqual([
      {
        message: 'ledger: damaged snapshots set aside',
        fields: { dir, snapshotsSkipped: [{ name: snap(5), reason: `${snap(5)} fails its CRC` }] },
      },
    ]);
    await opened.ledger.close();
  });

  it('says a snapshot that passes its CRC but does not decode is undecodable', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    for (let n = 1; n <= 2; n += 1) await ledger.append({ n });
    await ledger.compact({ upto: 2 }, 2);
    await ledger.close();
    // Cut-short msgpack: an array of two holding one item.
    const frame = prepareFrame(2, Buffer.from([0x92, 0x01]));
    sealFrame(frame, 0);
    writeFileSync(join(dir, snap(2)), frame);
    const { logger, warnings } = recordingLogger();
    const opened = await openLedger(dir, { logger });
    const skipped = warnings[0]?.fields.snapshotsSkipped as Array<{ name: string; reason: string }>;
    expect(skipped).toHaveLength(1);
    expect(skipped[0]?.name).toBe(snap(2));
    expect(skipped[0]?.reason).toMatch(/^undecodable: ./);
    await opened.ledger.close();
  });

  it('names the missing records in the refusal', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    for (let n = 1; n <= 5; n += 1) await ledger.append({ n });
    await ledger.compact({ upto: 2 }, 2);
    await ledger.append({ n: 6 });
    await ledger.close();
    // log-1 holds 1..5 and log-6 holds 6; without log-1, records 3 to 5 (after snapshot 2) are gone.
    unlinkSync(join(dir, seg(1)));
    await expect(openLedger(dir)).rejects.toThrow(`records 3 to 5 are missing (snapshot 2, first segment ${seg(6)})`);
  });

  it('reports a repair with where the damage was and how many bytes were set aside', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    await ledger.append({ n: 1 });
    const first = ledger.stats().bytesOnDisk;
    await ledger.append({ n: 2 });
    await ledger.append({ n: 3 });
    await ledger.close();
    const bytes = readFileSync(join(dir, seg(1)));
    bytes[first + FRAME_HEADER_BYTES] = (bytes[first + FRAME_HEADER_BYTES] as number) ^ 0xff;
    writeFileSync(join(dir, seg(1)), bytes);
    const { logger, warnings } = recordingLogger();
    const opened = await openLedger(dir, { logger, repair: true });
    const repaired = warnings.find((w) => w.message === 'ledger: repaired, records after the damage set aside');
    expect(repaired?.fields).toMatchObject({ dir, segment: seg(1), lastGoodSeq: 1, offset: first, bytesDiscarded: bytes.length - first });
    await opened.ledger.close();
  });

  it('warns, with the figures, when the log ends before its snapshot, and opens without a logger too', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    await ledger.append({ n: 1 });
    const second = ledger.stats().bytesOnDisk;
    for (let n = 2; n <= 4; n += 1) await ledger.append({ n });
    await ledger.compact({ upto: 4 }, 4);
    await ledger.close();
    unlinkSync(join(dir, seg(5)));
    truncateSync(join(dir, seg(1)), second + 3);
    const { logger, warnings } = recordingLogger();
    const opened = await openLedger(dir, { logger });
    expect(warnings.find((w) => w.message === 'ledger: log ends before the snapshot')?.fields).toEqual({ dir, logEnd: 1, snapshotSeq: 4 });
    await opened.ledger.close();

    // Cut again the same way, and open with no logger at all.
    unlinkSync(join(dir, seg(5)));
    truncateSync(join(dir, seg(1)), second + 3);
    const quiet = await openLedger(dir);
    expect(quiet.snapshot?.seq).toBe(4);
    await quiet.ledger.close();
  });

  it('leaves no file open after discarding a torn tail', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    for (let n = 1; n <= 3; n += 1) await ledger.append({ n });
    await ledger.close();
    truncateSync(join(dir, seg(1)), statSync(join(dir, seg(1))).size - 2);
    const opened = await openLedger(dir);
    expect(opened.stats.bytesDiscarded).toBeGreaterThan(0);
    await opened.ledger.close();
    const open = readdirSync('/proc/self/fd').flatMap((fd) => {
      try {
        return [readlinkSync(`/proc/self/fd/${fd}`)];
      } catch {
        return [];
      }
    });
    expect(open.filter((target) => target.startsWith(dir))).toEqual([]);
  });
});

describe('frames at the edges of their format', () => {
  it('reads back a seq above 2^32', () => {
    const seq = 2 ** 32 + 7;
    const frame = prepareFrame(seq, encodeValue({ n: 1 }));
    sealFrame(frame, 2);
    const read = readFrame(frame, 0, 1024);
    expect(read).toMatchObject({ seq, batchStart: seq - 2 });
  });

  it('reads a frame with an empty payload, and calls a buffer shorter than a header short', () => {
    const frame = prepareFrame(1, Buffer.alloc(0));
    sealFrame(frame, 0);
    expect(frame.length).toBe(FRAME_HEADER_BYTES);
    expect(readFrame(frame, 0, 1024)).toMatchObject({ seq: 1, size: FRAME_HEADER_BYTES });
    expect(readFrame(frame.subarray(0, FRAME_HEADER_BYTES - 1), 0, 1024)).toBe('short');
  });
});
