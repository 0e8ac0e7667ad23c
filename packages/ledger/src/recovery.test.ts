import { readdirSync, unlinkSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openLedger } from './index.ts';
import { tempDir } from './testing/temp-dir.ts';

const FIRST_SEGMENT = 'log-00000000000000000001.bin';
const cleanups: Array<() => void> = [];
function freshDir(): string {
  const t = tempDir();
  cleanups.push(t.remove);
  return t.dir;
}
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A closed ledger of `count` records appended one at a time (one batch each); returns where the last record starts. */
async function ledgerOf(count: number): Promise<{ dir: string; lastRecordAt: number; size: number }> {
  const dir = freshDir();
  const { ledger } = await openLedger(dir);
  for (let n = 1; n < count; n += 1) await ledger.append({ n, vm: `vm-${n}`, memoryMiB: 1024 * n });
  const lastRecordAt = ledger.stats().bytesOnDisk;
  await ledger.append({ n: count, vm: `vm-${count}`, memoryMiB: 1024 * count });
  await ledger.close();
  return { dir, lastRecordAt, size: statSync(join(dir, FIRST_SEGMENT)).size };
}

/** A copy of the ledger's segment, changed by `damage`, in a new directory. */
function damagedCopy(from: string, damage: (bytes: Buffer) => Buffer): string {
  const dir = freshDir();
  writeFileSync(join(dir, FIRST_SEGMENT), damage(readFileSync(join(from, FIRST_SEGMENT))));
  return dir;
}

describe('recovery', () => {
  it('discards a last record torn at any byte and keeps every earlier one', async () => {
    const { dir: original, lastRecordAt, size } = await ledgerOf(20);
    for (let cut = lastRecordAt; cut < size; cut += 1) {
      const dir = damagedCopy(original, (b) => b.subarray(0, cut));
      const { ledger, records, stats } = await openLedger<{ n: number }>(dir);
      expect(records.map((r) => r.record.n)).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
      expect(stats.bytesDiscarded).toBe(cut - lastRecordAt);
      expect(statSync(join(dir, FIRST_SEGMENT)).size).toBe(lastRecordAt);
      // Appends continue exactly where the valid log ends.
      expect(await ledger.append({ n: 20 })).toBe(20);
      await ledger.close();
    }
  });

  it('discards a last record with any byte flipped and keeps every earlier one', async () => {
    const { dir: original, lastRecordAt, size } = await ledgerOf(20);
    for (let at = lastRecordAt; at < size; at += 1) {
      const dir = damagedCopy(original, (b) => {
        const copy = Buffer.from(b);
        copy[at] = (copy[at] ?? 0) ^ 0x5a;
        return copy;
      });
      const { ledger, records, stats } = await openLedger<{ n: number }>(dir);
      expect(records).toHaveLength(19);
      expect(stats.bytesDiscarded).toBe(size - lastRecordAt);
      await ledger.close();
    }
  });

  it('refuses to open when an acknowledged record in the middle is damaged, naming where', async () => {
    const { dir: original } = await ledgerOf(20);
    const size = statSync(join(original, FIRST_SEGMENT)).size;
    const dir = damagedCopy(original, (b) => {
      const copy = Buffer.from(b);
      copy[Math.floor(size / 2)] = (copy[Math.floor(size / 2)] ?? 0) ^ 0xff;
      return copy;
    });
    const refused = await openLedger(dir).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'corrupt', details: { segment: FIRST_SEGMENT } });
    const lastGood = (refused as { details: { lastGoodSeq: number } }).details.lastGoodSeq;
    expect(lastGood).toBeGreaterThan(0);
    expect(lastGood).toBeLessThan(19);
    // Nothing was changed by the refusal, and the lock was released.
    expect(statSync(join(dir, FIRST_SEGMENT)).size).toBe(size);

    const repaired = await openLedger<{ n: number }>(dir, { repair: true });
    expect(repaired.records.map((r) => r.record.n)).toEqual(Array.from({ length: lastGood }, (_, i) => i + 1));
    expect(readdirSync(dir).some((name) => name.endsWith('.discarded'))).toBe(true);
    expect(await repaired.ledger.append({ n: lastGood + 1 })).toBe(lastGood + 1);
    await repaired.ledger.close();
  });

  it('treats a hole inside the final unsynced batch as a torn tail, not corruption (power loss)', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    for (let n = 1; n <= 5; n += 1) await ledger.append({ n });
    const batchAt = ledger.stats().bytesOnDisk;
    await Promise.all(Array.from({ length: 10 }, (_, i) => ledger.append({ n: 6 + i })));
    await ledger.close();
    // Pages of the last batch reach the disk out of order: the first record of the batch is zeros, later ones are intact.
    const bytes = readFileSync(join(dir, FIRST_SEGMENT));
    bytes.fill(0, batchAt, batchAt + 10);
    writeFileSync(join(dir, FIRST_SEGMENT), bytes);

    const reopened = await openLedger<{ n: number }>(dir);
    expect(reopened.records.map((r) => r.record.n)).toEqual([1, 2, 3, 4, 5]);
    expect(reopened.stats.bytesDiscarded).toBe(bytes.length - batchAt);
    await reopened.ledger.close();
  });

  it('refuses to open when a segment that was complete before the next one began is damaged at its end', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    for (let n = 1; n <= 5; n += 1) await ledger.append({ n });
    await ledger.compact({ upto: 5 });
    for (let n = 6; n <= 8; n += 1) await ledger.append({ n });
    await ledger.compact({ upto: 8 });
    await ledger.append({ n: 9 });
    await ledger.close();
    // Damage the last record of the middle segment (records 6 to 8), which the snapshot at 8 covers but the one at 5 needs.
    const middle = join(dir, 'log-00000000000000000006.bin');
    const bytes = readFileSync(middle);
    writeFileSync(middle, bytes.subarray(0, bytes.length - 1));
    // The newest snapshot covers the damage: it opens.
    const fine = await openLedger(dir);
    expect(fine.snapshot?.seq).toBe(8);
    await fine.ledger.close();
    // Without that snapshot the damaged records are needed: refused.
    writeFileSync(join(dir, 'snap-00000000000000000008.bin'), Buffer.from('garbage'));
    await expect(openLedger(dir)).rejects.toMatchObject({ code: 'corrupt', details: { segment: 'log-00000000000000000006.bin' } });
  });

  it('replays from the start when the only snapshot is damaged, since its log is still kept', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    for (let n = 1; n <= 5; n += 1) await ledger.append({ n });
    await ledger.compact({ upto: 5 });
    await ledger.append({ n: 6 });
    await ledger.close();
    writeFileSync(join(dir, 'snap-00000000000000000005.bin'), Buffer.alloc(3));
    const fallback = await openLedger<{ n: number }>(dir);
    expect(fallback.snapshot).toBeUndefined();
    expect(fallback.records.map((r) => r.record.n)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(fallback.stats.snapshotsSkipped).toBe(1);
    await fallback.ledger.close();
  });

  it('refuses to open when records between the usable snapshot and the first segment are missing', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    for (let n = 1; n <= 5; n += 1) await ledger.append({ n });
    await ledger.compact({ upto: 5 });
    for (let n = 6; n <= 8; n += 1) await ledger.append({ n });
    await ledger.compact({ upto: 8 });
    await ledger.close();
    expect(readdirSync(dir)).not.toContain(FIRST_SEGMENT); // compacted away: snapshot 5 covers it
    unlinkSync(join(dir, 'snap-00000000000000000005.bin'));
    writeFileSync(join(dir, 'snap-00000000000000000008.bin'), Buffer.alloc(40));
    await expect(openLedger(dir)).rejects.toMatchObject({
      code: 'corrupt',
      details: { snapshotSeq: 0, firstSegment: 'log-00000000000000000006.bin' },
    });
  });
});
