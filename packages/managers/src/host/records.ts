import {
  AgentActivateRequestSchema,
  AllocationIdSchema,
  AllocationSchema,
  AllotErrorSchema,
  CoreIdSchema,
  CpuOptionsSchema,
  CpuPolicySchema,
  EpochMsSchema,
  EventKindSchema,
  LimitsSchema,
  NodeIdSchema,
  RequestIdSchema,
  ResourceTypeSchema,
} from '@allot/core';

/*
 * What a host manager writes to its journal: one record per change, in order, every field an integer or a string
 * (the Allocation schema itself is integer-only apart from the overcommit ratio, which lives in limits as
 * configuration). `seq` grows by one with every record; replay skips records at or below a snapshot's seq.
 * Record kinds reuse the event kinds' names (allocated, released, ...), so a ledger and the events stream read alike.
 *
 * Workaround: zod is not (yet) a dependency of @allot/managers and the lockfile is not ours to change, so the
 * schemas are derived from core's own schemas (pick/extend/extract/or) instead of `z.object(...)`. Same validation.
 */

/** An empty object schema to extend (zod's z.object({}), reached through a core schema). */
const object = AgentActivateRequestSchema.pick({});
const kind = <K extends 'allocated' | 'reserved' | 'activated' | 'released' | 'expired' | 'limits_updated' | 'cordoned' | 'uncordoned'>(k: K) => EventKindSchema.extract([k]);
const int = EpochMsSchema;
const boolean = CpuOptionsSchema.shape.exclusive.unwrap();
const reasonText = AllotErrorSchema.shape.message.max(256);

const base = { seq: int.min(1), at: EpochMsSchema };

/** A slice's durable configuration: limits and, for CPU, the reserved cores and policy. */
export const SliceConfigSchema = object.extend({
  limits: LimitsSchema,
  reservedCores: CoreIdSchema.array().max(4096).optional(),
  policy: CpuPolicySchema.optional(),
});

const AllocatedRecord = object.extend({ kind: kind('allocated'), ...base, allocation: AllocationSchema, idCounter: int });
const ReservedRecord = object.extend({ kind: kind('reserved'), ...base, allocation: AllocationSchema, idCounter: int });
const ActivatedRecord = object.extend({ kind: kind('activated'), ...base, allocationId: AllocationIdSchema, requestId: RequestIdSchema });
const ReleasedRecord = object.extend({ kind: kind('released'), ...base, allocationId: AllocationIdSchema, requestId: RequestIdSchema, reason: reasonText });
const ExpiredRecord = object.extend({ kind: kind('expired'), ...base, allocationId: AllocationIdSchema });
const LimitsRecord = object.extend({ kind: kind('limits_updated'), ...base, resourceType: ResourceTypeSchema, config: SliceConfigSchema, force: boolean });
const CordonRecord = object.extend({ kind: kind('cordoned'), ...base, reason: reasonText });
const UncordonRecord = object.extend({ kind: kind('uncordoned'), ...base, reason: reasonText });

/**
 * One journaled change: allocated / reserved (the full Allocation, and the id counter it was drawn from),
 * activated, released (with the release's request id and reason), expired, limits_updated (the slice's whole new
 * configuration), cordoned / uncordoned.
 */
export const HostRecordSchema = AllocatedRecord.or(ReservedRecord)
  .or(ActivatedRecord)
  .or(ReleasedRecord)
  .or(ExpiredRecord)
  .or(LimitsRecord)
  .or(CordonRecord)
  .or(UncordonRecord);
export type HostRecord = ReturnType<typeof HostRecordSchema.parse>;
export type HostRecordKind = HostRecord['kind'];

/** A released allocation kept for the retention window, so a late retry of its allocate returns it instead of allocating again. */
export const RetainedReleaseSchema = object.extend({ allocation: AllocationSchema, releasedAt: EpochMsSchema, releaseRequestId: RequestIdSchema });
export type RetainedRelease = ReturnType<typeof RetainedReleaseSchema.parse>;

/** Everything needed to rebuild a host's state without its earlier records (for ledger compaction). */
export const HostStateSnapshotSchema = object.extend({
  version: int.min(1).max(1),
  nodeId: NodeIdSchema,
  /** The seq of the last record the snapshot includes. */
  seq: int,
  idCounter: int,
  cordon: object.extend({ cordoned: boolean, reason: reasonText }),
  configs: object.extend({ resourceType: ResourceTypeSchema, config: SliceConfigSchema }).array(),
  live: AllocationSchema.array(),
  released: RetainedReleaseSchema.array(),
});
export type HostStateSnapshot = ReturnType<typeof HostStateSnapshotSchema.parse>;

/**
 * Where a host manager's records go. `append` resolves when the record is durable; records become durable in the
 * order they were appended (a later one never before an earlier one).
 */
export interface Journal {
  append(record: HostRecord): Promise<void>;
}

/** What a manager recovers from: the latest snapshot, if any, and the records after it. */
export interface DurableState {
  readonly snapshot?: HostStateSnapshot;
  readonly records: readonly HostRecord[];
}

/** A journal that can also read back what it holds (the supervisor's recover path). */
export interface ReplayableJournal extends Journal {
  load(): Promise<DurableState>;
}

/**
 * Keeps records in memory and resolves at once. For tests, benches, and actor restarts inside one process (a crashed
 * actor is rebuilt from these records). Not durable across process restarts: the agent plugs in the file ledger.
 */
export class MemoryJournal implements ReplayableJournal {
  #records: HostRecord[] = [];
  #snapshot: HostStateSnapshot | undefined;
  /** Set to make the next appends fail, as a full disk would (tests of the fatal-journal path). */
  failWith: Error | undefined;

  append(record: HostRecord): Promise<void> {
    if (this.failWith !== undefined) return Promise.reject(this.failWith);
    this.#records.push(record);
    return Promise.resolve();
  }

  get records(): readonly HostRecord[] {
    return this.#records;
  }

  /** Replaces the records up to snapshot.seq by the snapshot (what a ledger's compaction does). */
  compact(snapshot: HostStateSnapshot): void {
    this.#snapshot = snapshot;
    this.#records = this.#records.filter((r) => r.seq > snapshot.seq);
  }

  load(): Promise<DurableState> {
    return Promise.resolve(this.#snapshot === undefined ? { records: [...this.#records] } : { snapshot: this.#snapshot, records: [...this.#records] });
  }
}
