import { unlink } from 'node:fs/promises';
import { encodeValue } from './codec.ts';
import { LedgerError } from './errors.ts';
import { checkLedgerFormat } from './format.ts';
import { pathOf, prepareDirectory, segmentName, syncDirectory } from './files.ts';
import { prepareFrame, FRAME_HEADER_BYTES } from './framing.ts';
import { GroupCommitWriter } from './group-commit.ts';
import { lockDirectory, type DirectoryLock } from './lock.ts';
import { recover, type LedgerLogger, type SizedFile } from './recovery.ts';
import { nodeSegmentIo, type SegmentFile, type SegmentIo } from './segment-file.ts';
import { writeSnapshotFile } from './snapshot-file.ts';

/** How a ledger is opened. Every field has a default. */
export interface LedgerOptions {
  /** On corruption (not a torn tail), keep the valid prefix and set the rest aside instead of refusing. Default false. */
  repair?: boolean;
  /** Largest encoded record; larger ones are refused with `too_large`. Default 1 MiB. */
  maxRecordBytes?: number;
  /** Bytes of records waiting for the disk before appends are refused with `overloaded`. Default 64 MiB. */
  maxQueueBytes?: number;
  /**
   * `shouldCompact()` once this many records follow the last snapshot (default 10,000), and the records since it
   * take at least as many bytes as it does (so a large state is not re-encoded every 10,000 records).
   */
  compactAfterRecords?: number;
  /** `shouldCompact()` once this many bytes of records follow the last snapshot, whatever its size. Default 16 MiB. */
  compactAfterBytes?: number;
  logger?: LedgerLogger;
  /** The file layer for segments; tests pass one that fails to prove the failed state. */
  io?: SegmentIo;
  /** Told after each group commit's fdatasync: its latency and the records it made durable (for metrics). */
  onFsync?: (durationMs: number, records: number) => void;
}

/** What `open()` found on disk and how long reading it took. */
export interface RecoveryStats {
  recoveryMs: number;
  /** Records after the snapshot, handed back for replay. */
  recordsReplayed: number;
  /** Bytes of a torn tail (or, with repair, of damaged records) removed. */
  bytesDiscarded: number;
  /** Segment files on disk after recovery. */
  segments: number;
  /** Seq of the snapshot returned, 0 without one. */
  snapshotSeq: number;
  /** Damaged snapshot files set aside (the previous snapshot was used instead). */
  snapshotsSkipped: number;
}

/** An open ledger with the state to rebuild: the snapshot, then `records` applied in order on top of it. */
export interface OpenedLedger<R, S> {
  ledger: Ledger<R, S>;
  snapshot?: { seq: number; state: S };
  records: Array<{ seq: number; record: R }>;
  stats: RecoveryStats;
}

/** Figures for metrics. Latencies in ms; recent = the last 1024 fsyncs. */
export interface LedgerStats {
  state: 'open' | 'closed' | 'failed';
  lastSeq: number;
  durableSeq: number;
  snapshotSeq: number;
  queuedBytes: number;
  fsyncs: number;
  fsyncLatencyMs: { p50: number; p99: number; max: number };
  recordsPerFsync: number;
  recordsSinceSnapshot: number;
  bytesSinceSnapshot: number;
  bytesOnDisk: number;
  segments: number;
  snapshots: number;
}

/** What one compaction did. */
export interface CompactionResult {
  snapshotSeq: number;
  snapshotBytes: number;
  segmentsDeleted: number;
  snapshotsDeleted: number;
}

const DEFAULTS = {
  maxRecordBytes: 1 << 20,
  maxQueueBytes: 64 << 20,
  compactAfterRecords: 10_000,
  compactAfterBytes: 16 << 20,
};

/**
 * Opens (creating if needed) the ledger in `dir`, taking its lock, and reads it back.
 * Rejects with LedgerError `locked` or `corrupt`; any other rejection is an I/O error of the directory itself.
 * Record and snapshot types are the caller's: the bytes are checked by CRC, their shape is not (validate with zod).
 */
export async function openLedger<R = unknown, S = unknown>(dir: string, options: LedgerOptions = {}): Promise<OpenedLedger<R, S>> {
  const started = performance.now();
  await prepareDirectory(dir);
  const lock = await lockDirectory(dir);
  try {
    await checkLedgerFormat(dir);
    const settings = { ...DEFAULTS, ...definedOnly(options) };
    const found = await recover(dir, { repair: options.repair ?? false, maxRecordBytes: settings.maxRecordBytes, logger: options.logger });
    const io = options.io ?? nodeSegmentIo;
    const segments = found.segments;
    let tail: { name: string; firstSeq: number; position: number };
    if (found.tail) {
      tail = found.tail;
    } else {
      const name = segmentName(found.lastSeq + 1);
      tail = { name, firstSeq: found.lastSeq + 1, position: 0 };
      segments.push({ name, seq: tail.firstSeq, bytes: 0 });
    }
    const file = await io.openSegment(pathOf(dir, tail.name), !found.tail);
    if (!found.tail) await syncDirectory(dir);
    const ledger = new Ledger<R, S>({
      dir,
      lock,
      io,
      settings,
      logger: options.logger,
      segment: { ...tail, file },
      lastSeq: found.lastSeq,
      snapshotSeq: found.snapshot?.seq ?? 0,
      bytesSinceSnapshot: found.bytesSinceSnapshot,
      segments,
      snapshots: found.snapshots,
      onFsync: options.onFsync,
    });
    const stats: RecoveryStats = {
      recoveryMs: performance.now() - started,
      recordsReplayed: found.records.length,
      bytesDiscarded: found.bytesDiscarded,
      segments: segments.length,
      snapshotSeq: found.snapshot?.seq ?? 0,
      snapshotsSkipped: found.snapshotsSkipped.length,
    };
    options.logger?.info({ dir, ...stats, lastSeq: found.lastSeq }, 'ledger: opened');
    const opened: OpenedLedger<R, S> = { ledger, records: found.records as Array<{ seq: number; record: R }>, stats };
    if (found.snapshot) opened.snapshot = found.snapshot as { seq: number; state: S };
    return opened;
  } catch (e) {
    await lock.release();
    throw e;
  }
}

interface LedgerInit {
  dir: string;
  lock: DirectoryLock;
  io: SegmentIo;
  settings: typeof DEFAULTS;
  logger: LedgerLogger | undefined;
  segment: { name: string; firstSeq: number; position: number; file: SegmentFile };
  lastSeq: number;
  snapshotSeq: number;
  bytesSinceSnapshot: number;
  segments: SizedFile[];
  snapshots: SizedFile[];
  onFsync: ((durationMs: number, records: number) => void) | undefined;
}

/**
 * A durable, ordered log of records of type R with snapshots of type S. One writer per directory (the lock).
 * `append` resolves once the record is written and fdatasync'd; concurrent appends share fsyncs (group commit).
 */
export class Ledger<R, S> {
  private readonly dir: string;
  private readonly lock: DirectoryLock;
  private readonly settings: typeof DEFAULTS;
  private readonly logger: LedgerLogger | undefined;
  private readonly writer: GroupCommitWriter;
  private readonly segments: SizedFile[];
  private readonly snapshots: SizedFile[];
  private assigned: number;
  private snapshotSeq: number;
  /** Seq of the compaction in progress: counts since it, so `shouldCompact()` does not fire again meanwhile. */
  private compactingSeq: number | undefined;
  private compaction: Promise<unknown> = Promise.resolve();
  /** Frame bytes appended since open, and that figure when the last snapshot was taken. */
  private appendedBytes: number;
  private appendedBytesAtSnapshot = 0;
  private closed = false;

  constructor(init: LedgerInit) {
    this.dir = init.dir;
    this.lock = init.lock;
    this.settings = init.settings;
    this.logger = init.logger;
    this.segments = init.segments;
    this.snapshots = init.snapshots;
    this.assigned = init.lastSeq;
    this.snapshotSeq = init.snapshotSeq;
    this.appendedBytes = init.bytesSinceSnapshot;
    this.writer = new GroupCommitWriter({
      dir: init.dir,
      io: init.io,
      segment: init.segment,
      durableSeq: init.lastSeq,
      onFsync: init.onFsync,
      onSegmentCreated: (created, closed) => {
        const old = this.segments.find((s) => s.name === closed.name);
        if (old) old.bytes = closed.bytes;
        this.segments.push({ name: created.name, seq: created.firstSeq, bytes: 0 });
      },
    });
  }

  /** Seq of the last record accepted by `append` (durable or not yet). The state a caller exports now covers up to it. */
  get lastSeq(): number {
    return this.assigned;
  }

  /** Seq of the last record on disk. */
  get durableSeq(): number {
    return this.writer.durableSeq;
  }

  /**
   * Appends a record; resolves with its seq once it is durable (written and fdatasync'd). The seq is assigned now, in
   * call order, so `lastSeq` right after the call includes this record. Rejects with `closed`, `failed`, `too_large`
   * or `overloaded` (then no seq was assigned and nothing was written).
   */
  append(record: R): Promise<number> {
    const refusal = this.refusal();
    if (refusal) return Promise.reject(refusal);
    const payload = encodeValue(record);
    if (payload.length > this.settings.maxRecordBytes) {
      return Promise.reject(
        new LedgerError('too_large', `record is ${payload.length} bytes, more than the ${this.settings.maxRecordBytes} allowed`, {
          bytes: payload.length,
          maxRecordBytes: this.settings.maxRecordBytes,
        }),
      );
    }
    const frameBytes = FRAME_HEADER_BYTES + payload.length;
    if (this.writer.queuedBytes + frameBytes > this.settings.maxQueueBytes) {
      return Promise.reject(
        new LedgerError(
          'overloaded',
          `${this.writer.queuedBytes} bytes are waiting for the disk, the limit is ${this.settings.maxQueueBytes}`,
          { queuedBytes: this.writer.queuedBytes, maxQueueBytes: this.settings.maxQueueBytes },
        ),
      );
    }
    this.assigned += 1;
    this.appendedBytes += frameBytes;
    return this.writer.enqueue(this.assigned, prepareFrame(this.assigned, payload));
  }

  /** True when enough records or bytes follow the last snapshot (or the one being written) to be worth a compaction. */
  shouldCompact(): boolean {
    if (this.closed || this.writer.failed) return false;
    const since = this.assigned - (this.compactingSeq ?? this.snapshotSeq);
    const bytes = this.appendedBytes - this.appendedBytesAtSnapshot;
    if (bytes >= this.settings.compactAfterBytes) return true;
    // A snapshot costs its whole size to encode and write; waiting until the log since it is at least as large keeps
    // that cost at most one byte per byte appended (amortised O(1) per record, as in an LSM's size ratio) and the
    // ledger at most about twice the state. Without it, a host retaining 100,000 released allocations re-encoded
    // all of them every 10,000 records (14% of the agent's CPU under churn).
    const newest = this.snapshots[this.snapshots.length - 1]?.bytes ?? 0;
    return since >= this.settings.compactAfterRecords && bytes >= newest;
  }

  /**
   * Takes `state` (covering every record up to `uptoSeq`, by default `lastSeq`) as the new snapshot. Call it right after
   * exporting the state, with no append in between: the state is encoded now, new appends go to a new segment, the
   * snapshot is written once the log is durable up to `uptoSeq`, then segments and snapshots no longer needed are
   * deleted. The previous snapshot and the records after it are kept, so a damaged newest snapshot can fall back to it.
   * A failed snapshot write rejects and leaves the log as it was (the next `shouldCompact()` says so again).
   */
  compact(state: S, uptoSeq: number = this.assigned): Promise<CompactionResult> {
    const refusal = this.refusal();
    if (refusal) return Promise.reject(refusal);
    const floor = this.compactingSeq ?? this.snapshotSeq;
    if (!Number.isSafeInteger(uptoSeq) || uptoSeq > this.assigned || uptoSeq < floor) {
      return Promise.reject(new RangeError(`compact: uptoSeq ${uptoSeq} must be an integer from ${floor} to lastSeq ${this.assigned}`));
    }
    if (uptoSeq === floor)
      return this.compaction.then(() => ({ snapshotSeq: this.snapshotSeq, snapshotBytes: 0, segmentsDeleted: 0, snapshotsDeleted: 0 }));
    const payload = encodeValue(state);
    const rotated = this.writer.rotate(this.assigned + 1);
    rotated.catch(() => undefined); // observed below; this only keeps an early failure from being "unhandled"
    this.compactingSeq = uptoSeq;
    const bytesMark = this.appendedBytes;
    const run = this.compaction
      .catch(() => undefined)
      .then(async () => {
        await rotated;
        await this.writer.whenDurable(uptoSeq);
        return this.installSnapshot(uptoSeq, payload, bytesMark);
      })
      .finally(() => {
        if (this.compactingSeq === uptoSeq) this.compactingSeq = undefined;
      });
    // Handled here too, so that a caller who fires and forgets (`void ledger.compact(...)`) gets a log line, not an
    // unhandledRejection that would take the agent down; the log is intact either way.
    run.catch((e: unknown) =>
      this.logger?.warn({ dir: this.dir, uptoSeq, error: e instanceof Error ? e.message : String(e) }, 'ledger: compaction failed'),
    );
    this.compaction = run;
    return run;
  }

  private async installSnapshot(seq: number, payload: Buffer, bytesMark: number): Promise<CompactionResult> {
    const written = await writeSnapshotFile(this.dir, seq, payload);
    this.snapshotSeq = seq;
    this.appendedBytesAtSnapshot = bytesMark;
    const previous = this.snapshots[this.snapshots.length - 1];
    this.snapshots.push({ name: written.name, seq, bytes: written.bytes });
    // Keep the previous snapshot and every segment holding a record after it: the fallback if this one is ever damaged.
    const keepFrom = previous?.seq ?? 0;
    const oldSnapshots = this.snapshots.filter((s) => s.seq < keepFrom);
    const oldSegments = this.segments.filter(
      (s, i) => i < this.segments.length - 1 && (this.segments[i + 1]?.seq ?? Infinity) <= keepFrom + 1,
    );
    for (const file of [...oldSegments, ...oldSnapshots]) {
      try {
        await unlink(pathOf(this.dir, file.name));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
          this.logger?.warn({ dir: this.dir, file: file.name, error: (e as Error).message }, 'ledger: could not delete a compacted file');
      }
    }
    removeAll(this.segments, oldSegments);
    removeAll(this.snapshots, oldSnapshots);
    if (oldSegments.length + oldSnapshots.length > 0) await syncDirectory(this.dir);
    return { snapshotSeq: seq, snapshotBytes: written.bytes, segmentsDeleted: oldSegments.length, snapshotsDeleted: oldSnapshots.length };
  }

  /** Waits for every accepted record to be durable and any compaction to finish, then releases the directory. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.compaction.catch(() => undefined);
    await this.writer.drained();
    await this.writer.closeFile();
    await this.lock.release();
  }

  stats(): LedgerStats {
    const latency = this.writer.syncLatencyMs.summary();
    const current = this.writer.current;
    let bytesOnDisk = 0;
    for (const s of this.segments) bytesOnDisk += s.name === current.name ? current.position : s.bytes;
    for (const s of this.snapshots) bytesOnDisk += s.bytes;
    return {
      state: this.writer.failed ? 'failed' : this.closed ? 'closed' : 'open',
      lastSeq: this.assigned,
      durableSeq: this.writer.durableSeq,
      snapshotSeq: this.snapshotSeq,
      queuedBytes: this.writer.queuedBytes,
      fsyncs: this.writer.syncs,
      fsyncLatencyMs: { p50: latency.p50, p99: latency.p99, max: latency.max },
      recordsPerFsync: this.writer.recordsPerSync.summary().mean,
      recordsSinceSnapshot: this.assigned - this.snapshotSeq,
      bytesSinceSnapshot: this.appendedBytes - this.appendedBytesAtSnapshot,
      bytesOnDisk,
      segments: this.segments.length,
      snapshots: this.snapshots.length,
    };
  }

  private refusal(): LedgerError | undefined {
    if (this.writer.failed) return this.writer.failed;
    if (this.closed) return new LedgerError('closed', `ledger ${this.dir} is closed`, { dir: this.dir });
    return undefined;
  }
}

function removeAll<T>(list: T[], gone: readonly T[]): void {
  for (const item of gone) list.splice(list.indexOf(item), 1);
}

function definedOnly(options: LedgerOptions): Partial<typeof DEFAULTS> {
  const out: Partial<typeof DEFAULTS> = {};
  for (const key of Object.keys(DEFAULTS) as Array<keyof typeof DEFAULTS>) {
    const value = options[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}
