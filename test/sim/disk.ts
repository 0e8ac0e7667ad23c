import type { DurableState, HostRecord, HostStateSnapshot, ReplayableJournal } from '../../packages/managers/src/index.ts';
import type { Faults } from './faults.ts';
import type { Scheduler } from './scheduler.ts';

/** What survives an agent's crash: the records and the snapshot that reached the disk. */
export class SimDisk {
  records: HostRecord[] = [];
  snapshot: HostStateSnapshot | undefined;

  durableState(): DurableState {
    // Copies: a restored manager must not share objects with what the disk holds.
    return this.snapshot === undefined
      ? { records: structuredClone(this.records) }
      : { snapshot: structuredClone(this.snapshot), records: structuredClone(this.records) };
  }

  /** The highest seq on disk (snapshot or record). */
  get lastSeq(): number {
    return this.records.at(-1)?.seq ?? this.snapshot?.seq ?? 0;
  }
}

/**
 * Marks a rejection as observed: the manager chains only the last append of a multi-record commit, and the process is
 * about to exit on the journal failure anyway (the real agent's onFatal); callers still see the rejection.
 */
function handled(promise: Promise<void>): Promise<void> {
  promise.catch(() => undefined);
  return promise;
}

interface Queued {
  readonly record: HostRecord;
  readonly committedAt: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * One agent incarnation's journal on a SimDisk, behaving like the ledger's group commit: appends queue, a flush (an
 * event the scheduler places, sometimes after a stall) makes the queue (or a prefix of it) durable in order and
 * resolves those appends. A failed flush rejects everything queued and every later append, and reports the ledger
 * fatal, as the LedgerJournal does (the agent then exits and restarts from disk). A crash (`kill`) drops the queue:
 * those promises never settle, as in a dead process.
 */
export class SimJournal implements ReplayableJournal {
  readonly #disk: SimDisk;
  readonly #sched: Scheduler;
  readonly #faults: () => Faults;
  readonly #name: string;
  readonly #onFatal: (error: Error) => void;
  /** Called with each record once durable (the agent publishes the event then). */
  readonly #onDurable: (record: HostRecord, committedAt: number) => void;
  /** While the agent restores from this disk, appends do not throw (that fault aims at the supervisor's rebuild). */
  restoring = false;
  #threw = false;
  #queue: Queued[] = [];
  #flushScheduled = false;
  #failed = false;
  #dead = false;

  constructor(options: {
    disk: SimDisk;
    sched: Scheduler;
    faults: () => Faults;
    name: string;
    onFatal: (error: Error) => void;
    /** With the true instant the record was appended (committed in the agent's memory). */
    onDurable?: (record: HostRecord, committedAt: number) => void;
  }) {
    this.#disk = options.disk;
    this.#sched = options.sched;
    this.#faults = options.faults;
    this.#name = options.name;
    this.#onFatal = options.onFatal;
    this.#onDurable = options.onDurable ?? (() => undefined);
  }

  /** Records appended but not yet durable. */
  get inFlight(): number {
    return this.#queue.length;
  }

  /** The journal can no longer make records durable (a failed flush). */
  get failed(): boolean {
    return this.#failed;
  }

  append(record: HostRecord): Promise<void> {
    if (this.#dead) return new Promise(() => undefined);
    if (this.#failed) return handled(Promise.reject(new Error('ledger failed; the agent is restarting from disk')));
    // Once per incarnation: a second throw while the supervisor rebuilds makes the rebuild fail and the actor stop for
    // good, with the process still running (a liveness defect of its own, see docs/simulation.md); one throw is enough
    // to drive the rebuild path.
    if (!this.restoring && !this.#threw && this.#sched.chance(this.#faults().appendThrowP)) {
      this.#threw = true;
      this.#sched.trace(`${this.#name} journal append of seq ${record.seq} throws`);
      throw new Error(`simulated EIO appending seq ${record.seq}`);
    }
    const copy = structuredClone(record);
    const committedAt = this.#sched.now;
    const appended = new Promise<void>((resolve, reject) => this.#queue.push({ record: copy, committedAt, resolve, reject }));
    this.#scheduleFlush();
    return handled(appended);
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    const faults = this.#faults();
    const stalled = this.#sched.chance(faults.diskStallP);
    const delay = stalled ? this.#sched.int(500, 20_000) : this.#sched.int(0, 3);
    if (stalled) this.#sched.trace(`${this.#name} disk stalls ${delay} ms`);
    this.#sched.after(delay, `${this.#name} flush`, () => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#dead || this.#failed || this.#queue.length === 0) return;
    const faults = this.#faults();
    if (this.#sched.chance(faults.diskFailP)) {
      this.#failed = true;
      const error = new Error('simulated disk failure (fdatasync EIO)');
      this.#sched.trace(`${this.#name} disk write FAILS with ${this.#queue.length} records queued`);
      const queued = this.#queue;
      this.#queue = [];
      for (const q of queued) q.reject(error);
      this.#onFatal(error);
      return;
    }
    const count = this.#sched.chance(faults.partialFlushP) ? this.#sched.int(1, this.#queue.length) : this.#queue.length;
    const written = this.#queue.splice(0, count);
    for (const q of written) {
      this.#disk.records.push(q.record);
      this.#onDurable(q.record, q.committedAt);
    }
    for (const q of written) q.resolve();
    if (this.#queue.length > 0) this.#scheduleFlush();
  }

  load(): Promise<DurableState> {
    return Promise.resolve(this.#disk.durableState());
  }

  /**
   * Writes a snapshot (ledger compaction): on disk only after a delay, and only the records after it are kept. A
   * snapshot may cover records still queued (it is exported from memory); if the process dies first it is not written.
   */
  compact(snapshot: HostStateSnapshot): void {
    const copy = structuredClone(snapshot);
    const install = (): void => {
      if (this.#dead || this.#failed) return;
      // The ledger installs a snapshot only once every record it covers is durable (compact awaits whenDurable(seq)).
      if (this.#disk.lastSeq < copy.seq) {
        this.#sched.after(this.#sched.int(1, 50), `${this.#name} snapshot wait`, install);
        return;
      }
      // The ledger never installs a snapshot older than the one it has (compact refuses uptoSeq below its floor).
      if ((this.#disk.snapshot?.seq ?? 0) >= copy.seq) return;
      this.#disk.snapshot = copy;
      this.#disk.records = this.#disk.records.filter((r) => r.seq > copy.seq);
      this.#sched.trace(`${this.#name} compacted at seq ${copy.seq}`);
    };
    this.#sched.after(this.#sched.int(1, 50), `${this.#name} snapshot`, install);
  }

  /** The process died: nothing queued becomes durable, nothing settles. */
  kill(): void {
    this.#dead = true;
    this.#queue = [];
  }
}
