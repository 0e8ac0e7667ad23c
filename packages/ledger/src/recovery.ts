import { open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { decodeValue } from './codec.ts';
import { LedgerError } from './errors.ts';
import { FILE_MODE, listLedgerFiles, pathOf, syncDirectory } from './files.ts';
import { scanSegment } from './framing.ts';
import { readSnapshotFile } from './snapshot-file.ts';

/** Structured log sink, pino-compatible (`logger.warn(fields, message)`). */
export interface LedgerLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

/** A file of the ledger with its size. */
export interface SizedFile {
  readonly name: string;
  readonly seq: number;
  bytes: number;
}

export interface Recovered {
  readonly snapshot: { readonly seq: number; readonly state: unknown } | undefined;
  readonly records: Array<{ readonly seq: number; readonly record: unknown }>;
  readonly lastSeq: number;
  /** Segment files on disk after recovery, ascending; `seq` is the first seq. */
  readonly segments: SizedFile[];
  /** Valid snapshot files on disk, ascending. */
  readonly snapshots: SizedFile[];
  /** Where appends continue: the last segment and its end, or none (a new segment starting at lastSeq + 1 is needed). */
  readonly tail: { readonly name: string; readonly firstSeq: number; readonly position: number } | undefined;
  readonly bytesDiscarded: number;
  readonly bytesSinceSnapshot: number;
  readonly snapshotsSkipped: Array<{ readonly name: string; readonly reason: string }>;
}

/**
 * Reads a ledger directory back: the newest valid snapshot (falling back to the one before when it is damaged), then
 * every record after it, in seq order. A torn final batch is truncated away; damage to an acknowledged record refuses
 * to open (`corrupt`) unless `repair`, which keeps the valid prefix and sets the rest aside in `*.discarded` files.
 */
export async function recover(
  dir: string,
  options: { repair: boolean; maxRecordBytes: number; logger: LedgerLogger | undefined },
): Promise<Recovered> {
  const files = await listLedgerFiles(dir);
  for (const tmp of files.temporaries) await unlink(pathOf(dir, tmp)).catch(() => undefined);

  const snapshotsSkipped: Array<{ name: string; reason: string }> = [];
  const snapshots: SizedFile[] = [];
  let snapshot: { seq: number; state: unknown } | undefined;
  for (const file of [...files.snapshots].reverse()) {
    const read = await readSnapshotFile(dir, file);
    let state: unknown;
    if (read.ok) {
      try {
        state = decodeValue(read.payload);
      } catch (e) {
        snapshotsSkipped.push({ name: file.name, reason: `undecodable: ${(e as Error).message}` });
        continue;
      }
      snapshots.unshift({ name: file.name, seq: file.seq, bytes: read.bytes });
      snapshot ??= { seq: file.seq, state };
    } else {
      snapshotsSkipped.push({ name: file.name, reason: read.reason });
    }
  }
  if (snapshotsSkipped.length > 0) {
    // Set aside, not deleted: a later compaction must not mistake a damaged file for the newest snapshot.
    for (const skipped of snapshotsSkipped) await rename(pathOf(dir, skipped.name), pathOf(dir, `${skipped.name}.${Date.now()}.discarded`));
    await syncDirectory(dir);
    options.logger?.warn({ dir, snapshotsSkipped }, 'ledger: damaged snapshots set aside');
  }
  const base = snapshot?.seq ?? 0;

  const segments: SizedFile[] = [];
  for (const file of files.segments) segments.push({ ...file, bytes: (await stat(pathOf(dir, file.name))).size });
  // Segments wholly covered by the snapshot are kept on disk (they back the older snapshot) but not read.
  const firstNeeded = segments.findIndex((s, i) => (segments[i + 1]?.seq ?? Infinity) > base + 1);
  const needed = firstNeeded === -1 ? [] : segments.slice(firstNeeded);
  const first = needed[0];
  if (first !== undefined && first.seq > base + 1) {
    throw new LedgerError(
      'corrupt',
      `ledger ${dir}: records ${base + 1} to ${first.seq - 1} are missing (snapshot ${base}, first segment ${first.name})`,
      {
        dir,
        snapshotSeq: base,
        firstSegment: first.name,
        snapshotsSkipped,
      },
    );
  }

  const records: Array<{ seq: number; record: unknown }> = [];
  let expected = first?.seq ?? base + 1;
  let bytesDiscarded = 0;
  let bytesSinceSnapshot = 0;
  for (let i = 0; i < needed.length; i += 1) {
    const segment = needed[i] as SizedFile;
    const isLast = i === needed.length - 1;
    if (segment.seq !== expected) {
      throw new LedgerError(
        'corrupt',
        `ledger ${dir}: ${segment.name} starts at ${segment.seq} but the previous segment ends at ${expected - 1}`,
        { dir, segment: segment.name, expectedSeq: expected },
      );
    }
    const buf = await readFile(pathOf(dir, segment.name));
    const scan = scanSegment(buf, segment.seq, isLast, options.maxRecordBytes);
    for (const frame of scan.frames) {
      if (frame.seq <= base) continue;
      let record: unknown;
      try {
        record = decodeValue(frame.payload);
      } catch (e) {
        throw new LedgerError(
          'corrupt',
          `ledger ${dir}: record ${frame.seq} in ${segment.name} passes its CRC but does not decode: ${(e as Error).message}`,
          { dir, segment: segment.name, seq: frame.seq },
        );
      }
      records.push({ seq: frame.seq, record });
      bytesSinceSnapshot += frame.size;
    }
    expected = segment.seq + scan.frames.length;
    const end = scan.end;
    if (end.kind === 'clean') continue;
    if (end.kind === 'torn') {
      const discarded = buf.length - end.offset;
      await truncateDurably(dir, segment.name, end.offset);
      segment.bytes = end.offset;
      bytesDiscarded += discarded;
      options.logger?.warn({ dir, segment: segment.name, bytesDiscarded: discarded, lastSeq: expected - 1 }, 'ledger: torn tail discarded');
      continue;
    }
    const details = { dir, segment: segment.name, lastGoodSeq: expected - 1, ...end.details };
    if (!options.repair) {
      throw new LedgerError(
        'corrupt',
        `ledger ${dir}: ${segment.name}: ${end.reason}; acknowledged records may be damaged, refusing to open (repair: true keeps records up to ${expected - 1})`,
        details,
      );
    }
    // Repair: keep the valid prefix, set every later byte aside rather than deleting it.
    await writeFile(pathOf(dir, `${segment.name}.${Date.now()}.discarded`), buf.subarray(end.offset), { mode: FILE_MODE });
    await truncateDurably(dir, segment.name, end.offset);
    segment.bytes = end.offset;
    bytesDiscarded += buf.length - end.offset;
    for (const later of needed.slice(i + 1)) {
      bytesDiscarded += later.bytes;
      await rename(pathOf(dir, later.name), pathOf(dir, `${later.name}.${Date.now()}.discarded`));
      segments.splice(segments.indexOf(later), 1);
    }
    await syncDirectory(dir);
    options.logger?.warn({ ...details, bytesDiscarded }, 'ledger: repaired, records after the damage set aside');
    break;
  }

  const logEnd = expected - 1;
  const lastSegment = segments[segments.length - 1];
  // The log may end before the snapshot only if records the snapshot already covers were lost: harmless, but appends
  // must then start a fresh segment at base + 1 instead of leaving a gap inside the old one.
  const tail =
    lastSegment !== undefined && logEnd >= base
      ? { name: lastSegment.name, firstSeq: lastSegment.seq, position: lastSegment.bytes }
      : undefined;
  if (lastSegment !== undefined && logEnd < base)
    options.logger?.warn({ dir, logEnd, snapshotSeq: base }, 'ledger: log ends before the snapshot');
  return {
    snapshot,
    records,
    lastSeq: Math.max(logEnd, base),
    segments,
    snapshots,
    tail,
    bytesDiscarded,
    bytesSinceSnapshot,
    snapshotsSkipped,
  };
}

async function truncateDurably(dir: string, name: string, length: number): Promise<void> {
  const handle = await open(pathOf(dir, name), 'r+');
  try {
    await handle.truncate(length);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}
