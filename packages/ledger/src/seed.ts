import { stat, unlink } from 'node:fs/promises';
import { encodeValue } from './codec.ts';
import { LedgerError } from './errors.ts';
import { listLedgerFiles, pathOf, prepareDirectory, syncDirectory } from './files.ts';
import { checkLedgerFormat } from './format.ts';
import { lockDirectory } from './lock.ts';
import { writeSnapshotFile } from './snapshot-file.ts';

/**
 * Starts a ledger in an empty directory from a state taken elsewhere (a restore from an export onto a new disk): the
 * state becomes the snapshot at `seq`, and appends continue at seq + 1, as if the records before it had been compacted.
 * Refused with `not_empty` when the directory already holds a record or a snapshot: a restore never merges into, or
 * overwrites, a ledger that may hold acknowledged allocations.
 */
export async function seedLedger(dir: string, seq: number, state: unknown): Promise<void> {
  if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError(`seedLedger: seq ${seq} must be a positive integer`);
  await prepareDirectory(dir);
  const lock = await lockDirectory(dir);
  try {
    await checkLedgerFormat(dir);
    const files = await listLedgerFiles(dir);
    const sizes = await Promise.all(files.segments.map(async (s) => ({ name: s.name, bytes: (await stat(pathOf(dir, s.name))).size })));
    const holding = [...files.snapshots.map((s) => s.name), ...sizes.filter((s) => s.bytes > 0).map((s) => s.name)];
    if (holding.length > 0) {
      throw new LedgerError(
        'not_empty',
        `the ledger in ${dir} already holds ${holding.join(', ')}; restore onto an empty state directory`,
        { dir, files: holding },
      );
    }
    // Empty segments (an agent that started and wrote nothing) would claim seq 1 onwards; the snapshot replaces them.
    for (const empty of sizes) await unlink(pathOf(dir, empty.name));
    await writeSnapshotFile(dir, seq, encodeValue(state));
    await syncDirectory(dir);
  } finally {
    await lock.release();
  }
}
