import { LedgerError } from './errors.ts';
import { segmentName, pathOf, syncDirectory } from './files.ts';
import { sealFrame } from './framing.ts';
import type { SegmentFile, SegmentIo } from './segment-file.ts';
import { SampleWindow } from './stats.ts';

interface QueuedRecord {
  readonly kind: 'record';
  readonly seq: number;
  readonly frame: Buffer;
  readonly resolve: (seq: number) => void;
  readonly reject: (error: LedgerError) => void;
}

interface QueuedRotation {
  readonly kind: 'rotate';
  readonly firstSeq: number;
  readonly resolve: () => void;
  readonly reject: (error: LedgerError) => void;
}

type Queued = QueuedRecord | QueuedRotation;

interface DurableWaiter {
  readonly seq: number;
  readonly resolve: () => void;
  readonly reject: (error: LedgerError) => void;
}

/** The segment being appended to. */
export interface OpenSegment {
  readonly name: string;
  readonly firstSeq: number;
  readonly file: SegmentFile;
  /** Bytes written so far: the next write goes here. */
  position: number;
}

/**
 * Group commit: records queued while a write+fdatasync is in flight go to disk together in the next one.
 * One loop writes batches strictly in queue order, so seq order is disk order and a record is never durable before an
 * earlier one. A rotation marker in the queue switches segments between two batches.
 *
 * Any write or fsync error fails the writer for good. Retrying an fsync is unsafe: after a failed fsync Linux marks the
 * dirty pages clean (or drops them) and reports the error once, so a second fsync can succeed without the data ever
 * reaching the disk (the 2018 "fsyncgate" that made PostgreSQL PANIC instead of retrying). The only trustworthy state
 * is what a fresh open reads back from the files.
 */
export class GroupCommitWriter {
  private queue: Queued[] = [];
  /** Taken off the queue and being written; rejected too if the write fails. */
  private inFlight: Queued[] = [];
  private queued = 0;
  private running = false;
  private failure: LedgerError | undefined;
  private durable: number;
  private waiters: DurableWaiter[] = [];
  private idle: Array<() => void> = [];
  private segment: OpenSegment;
  private readonly dir: string;
  private readonly io: SegmentIo;
  private readonly onSegmentCreated: (created: { name: string; firstSeq: number }, closed: { name: string; bytes: number }) => void;
  /** How long each batch took to become durable (write + fdatasync, or the O_DSYNC write), in ms. */
  readonly syncLatencyMs = new SampleWindow();
  /** Records made durable by each fdatasync. */
  readonly recordsPerSync = new SampleWindow();
  syncs = 0;
  private readonly onFsync: ((durationMs: number, records: number) => void) | undefined;

  constructor(options: {
    dir: string;
    io: SegmentIo;
    segment: OpenSegment;
    durableSeq: number;
    onFsync?: ((durationMs: number, records: number) => void) | undefined;
    onSegmentCreated: (created: { name: string; firstSeq: number }, closed: { name: string; bytes: number }) => void;
  }) {
    this.dir = options.dir;
    this.io = options.io;
    this.segment = options.segment;
    this.durable = options.durableSeq;
    this.onSegmentCreated = options.onSegmentCreated;
    this.onFsync = options.onFsync;
  }

  /** Highest seq written and synced. */
  get durableSeq(): number {
    return this.durable;
  }

  /** Bytes of records accepted but not yet durable. */
  get queuedBytes(): number {
    return this.queued;
  }

  get failed(): LedgerError | undefined {
    return this.failure;
  }

  get current(): Readonly<OpenSegment> {
    return this.segment;
  }

  /** Queues a prepared frame; resolves with its seq once durable. The caller assigns seqs in increasing order. */
  enqueue(seq: number, frame: Buffer): Promise<number> {
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    if (this.failure) return Promise.reject(this.failure);
    this.queue.push({ kind: 'record', seq, frame, resolve, reject });
    this.queued += frame.length;
    this.kick();
    return promise;
  }

  /** After every record queued so far, start a new segment whose first record will be `firstSeq`. */
  rotate(firstSeq: number): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    if (this.failure) return Promise.reject(this.failure);
    this.queue.push({ kind: 'rotate', firstSeq, resolve, reject });
    this.kick();
    return promise;
  }

  /** Resolves when every record up to `seq` is durable. */
  whenDurable(seq: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (seq <= this.durable) return Promise.resolve();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.waiters.push({ seq, resolve, reject });
    return promise;
  }

  /** Resolves when the queue is empty and no batch is in flight (or the writer failed). */
  drained(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.idle.push(resolve);
    return promise;
  }

  async closeFile(): Promise<void> {
    await this.segment.file.close().catch(() => undefined);
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    // Start on a microtask, not now: appends made in the same tick (a burst) then share the first batch.
    queueMicrotask(() => void this.run());
  }

  private async run(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.failure) {
        const head = this.queue[0];
        if (head?.kind === 'rotate') {
          this.inFlight = this.queue.splice(0, 1);
          await this.switchSegment(head.firstSeq);
          this.inFlight = [];
          head.resolve();
          continue;
        }
        const batch = this.takeBatch();
        this.inFlight = batch;
        await this.writeBatch(batch);
        this.inFlight = [];
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.running = false;
      for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  /** Every record up to the next rotation marker. */
  private takeBatch(): QueuedRecord[] {
    const markerAt = this.queue.findIndex((q) => q.kind === 'rotate');
    let batch: Queued[];
    if (markerAt === -1) {
      batch = this.queue;
      this.queue = [];
    } else {
      batch = this.queue.splice(0, markerAt);
    }
    return batch as QueuedRecord[];
  }

  private async writeBatch(batch: QueuedRecord[]): Promise<void> {
    const first = batch[0];
    const last = batch[batch.length - 1];
    if (first === undefined || last === undefined) return;
    let bytes = 0;
    for (const record of batch) {
      sealFrame(record.frame, record.seq - first.seq);
      bytes += record.frame.length;
    }
    const buffer =
      batch.length === 1
        ? first.frame
        : Buffer.concat(
            batch.map((r) => r.frame),
            bytes,
          );
    // Timed from the write: with O_DSYNC (durableWrites) the write is the sync, and either way this is how long the
    // batch took to become durable.
    const started = performance.now();
    await writeFully(this.segment.file, buffer, this.segment.position);
    if (this.segment.file.durableWrites !== true) await this.segment.file.datasync();
    const syncMs = performance.now() - started;
    this.syncLatencyMs.add(syncMs);
    this.recordsPerSync.add(batch.length);
    if (this.onFsync !== undefined) {
      try {
        this.onFsync(syncMs, batch.length);
      } catch {
        // A metrics hook must never fail the writer.
      }
    }
    this.syncs += 1;
    this.segment.position += bytes;
    this.queued -= bytes;
    this.durable = last.seq;
    for (const record of batch) record.resolve(record.seq);
    if (this.waiters.length > 0) {
      const still: DurableWaiter[] = [];
      for (const w of this.waiters) {
        if (w.seq <= this.durable) w.resolve();
        else still.push(w);
      }
      this.waiters = still;
    }
  }

  private async switchSegment(firstSeq: number): Promise<void> {
    // An empty segment already starting at firstSeq is reused: creating it again would collide with its name.
    if (this.segment.position === 0 && this.segment.firstSeq === firstSeq) return;
    const name = segmentName(firstSeq);
    const file = await this.io.openSegment(pathOf(this.dir, name), true);
    const old = this.segment;
    this.segment = { name, firstSeq, file, position: 0 };
    // The new name must be durable before any record in it is acknowledged.
    await syncDirectory(this.dir);
    this.onSegmentCreated({ name, firstSeq }, { name: old.name, bytes: old.position });
    await old.file.close();
  }

  private fail(cause: unknown): void {
    if (this.failure) return;
    const message = cause instanceof Error ? cause.message : String(cause);
    this.failure = new LedgerError(
      'failed',
      `ledger write failed, reopen it from disk: ${message}`,
      { dir: this.dir, durableSeq: this.durable },
      { cause },
    );
    for (const q of [...this.inFlight, ...this.queue]) q.reject(this.failure);
    this.inFlight = [];
    this.queue = [];
    this.queued = 0;
    for (const w of this.waiters) w.reject(this.failure);
    this.waiters = [];
    void this.segment.file.close().catch(() => undefined);
  }
}

async function writeFully(file: SegmentFile, buffer: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const written = await file.write(done === 0 ? buffer : buffer.subarray(done), position + done);
    if (written <= 0) throw new Error(`write made no progress at byte ${position + done}`);
    done += written;
  }
}
