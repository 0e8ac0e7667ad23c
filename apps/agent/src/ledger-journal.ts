import {
  HostRecordSchema,
  HostStateSnapshotSchema,
  type DurableState,
  type HostRecord,
  type HostStateSnapshot,
  type ReplayableJournal,
} from '@allot/managers';
import { openLedger, type Ledger, type RecoveryStats } from '@allot/ledger';
import type { Logger } from 'pino';

export interface LedgerJournalOptions {
  readonly dir: string;
  readonly log: Logger;
  /** Called once when the ledger can no longer make records durable: the agent must stop and restart from disk. */
  readonly onFatal: (error: unknown) => void;
  /** Called after each record is durable, in order (the agent publishes the audit event then). */
  readonly onDurable: (record: HostRecord) => void;
  readonly compactAfterRecords?: number;
  /** Each group commit's fdatasync latency and batch size (metrics). */
  readonly onFsync?: (durationMs: number, records: number) => void;
}

/**
 * The host manager's journal on the file ledger: append resolves only when the record is on disk (group commit
 * batches concurrent appends into one fsync). It also keeps the durable records since the last compaction in memory,
 * so the supervisor can rebuild a crashed actor without reopening the (locked) ledger files.
 */
export class LedgerJournal implements ReplayableJournal {
  readonly ledger: Ledger<HostRecord, HostStateSnapshot>;
  readonly recovery: RecoveryStats;
  readonly #opts: LedgerJournalOptions;
  #snapshot: HostStateSnapshot | undefined;
  #records: HostRecord[];
  #failed = false;
  #compacting = false;

  private constructor(
    ledger: Ledger<HostRecord, HostStateSnapshot>,
    recovery: RecoveryStats,
    snapshot: HostStateSnapshot | undefined,
    records: HostRecord[],
    opts: LedgerJournalOptions,
  ) {
    this.ledger = ledger;
    this.recovery = recovery;
    this.#snapshot = snapshot;
    this.#records = records;
    this.#opts = opts;
  }

  /**
   * Opens the ledger and validates what it holds: a record that does not match the schema means the file was
   * written by something else or damaged beyond its CRC, and the agent refuses to start rather than guess.
   */
  static async open(opts: LedgerJournalOptions): Promise<LedgerJournal> {
    const opened = await openLedger<unknown, unknown>(opts.dir, {
      logger: opts.log,
      ...(opts.compactAfterRecords === undefined ? {} : { compactAfterRecords: opts.compactAfterRecords }),
      ...(opts.onFsync === undefined ? {} : { onFsync: opts.onFsync }),
    });
    let snapshot: HostStateSnapshot | undefined;
    if (opened.snapshot !== undefined) {
      const parsed = HostStateSnapshotSchema.safeParse(opened.snapshot.state);
      if (!parsed.success)
        throw new Error(`ledger snapshot ${opened.snapshot.seq} does not match the host state schema: ${parsed.error.issues[0]?.message}`);
      snapshot = parsed.data;
    }
    const records: HostRecord[] = [];
    for (const { seq, record } of opened.records) {
      const parsed = HostRecordSchema.safeParse(record);
      if (!parsed.success)
        throw new Error(`ledger record ${seq} does not match the host record schema: ${parsed.error.issues[0]?.message}`);
      records.push(parsed.data);
    }
    return new LedgerJournal(opened.ledger as Ledger<HostRecord, HostStateSnapshot>, opened.stats, snapshot, records, opts);
  }

  /** What start-up replays. */
  durableState(): DurableState {
    return this.#snapshot === undefined ? { records: [...this.#records] } : { snapshot: this.#snapshot, records: [...this.#records] };
  }

  append(record: HostRecord): Promise<void> {
    if (this.#failed) return Promise.reject(new Error('ledger failed; the agent is restarting from disk'));
    return this.ledger.append(record).then(
      (seq) => {
        // Host seq and ledger seq advance together (one record each); a gap means a record went missing in between.
        if (seq !== record.seq) this.#opts.log.error({ ledgerSeq: seq, hostSeq: record.seq }, 'ledger and host sequence disagree');
        this.#records.push(record);
        this.#opts.onDurable(record);
      },
      (error: unknown) => {
        if (!this.#failed) {
          this.#failed = true;
          this.#opts.onFatal(error);
        }
        throw error;
      },
    );
  }

  load(): Promise<DurableState> {
    return Promise.resolve(this.durableState());
  }

  /**
   * Compaction keeps the ledger bounded under churn: a snapshot exported inside one host turn (so it matches its seq
   * exactly), then the ledger drops what the snapshot covers. Runs one at a time, in the background.
   */
  async compactIfDue(
    exportState: () => Promise<{ ok: true; value: HostStateSnapshot } | { ok: false; error: { message: string } }>,
  ): Promise<void> {
    if (this.#compacting || this.#failed || !this.ledger.shouldCompact()) return;
    this.#compacting = true;
    try {
      const state = await exportState();
      if (!state.ok) throw new Error(state.error.message);
      const result = await this.ledger.compact(state.value, state.value.seq);
      this.#snapshot = state.value;
      this.#records = this.#records.filter((r) => r.seq > state.value.seq);
      this.#opts.log.info(
        { snapshotSeq: result.snapshotSeq, snapshotBytes: result.snapshotBytes, segmentsDeleted: result.segmentsDeleted },
        'ledger compacted',
      );
    } catch (error) {
      this.#opts.log.warn({ err: error }, 'ledger compaction failed; will retry');
    } finally {
      this.#compacting = false;
    }
  }

  async close(): Promise<void> {
    await this.ledger.close();
  }
}
