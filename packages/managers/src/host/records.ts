import { z } from 'zod';
import {
  AllocationIdSchema,
  AllocationSchema,
  CoreIdSchema,
  CpuPolicySchema,
  EpochMsSchema,
  FenceSchema,
  LimitsSchema,
  MAX_PREEMPTION_VICTIMS,
  NodeIdSchema,
  RequestIdSchema,
  ResourceTypeSchema,
} from '@allot/core';

/*
 * What a host manager writes to its journal: one record per change, in order, every field an integer or a string
 * (the Allocation schema itself is integer-only apart from the overcommit ratio, which lives in limits as
 * configuration). `seq` grows by one with every record; replay skips records at or below a snapshot's seq.
 * Record kinds reuse the event kinds' names (allocated, released, ...), so a ledger and the events stream read alike.
 */

const int = z.int().min(0);
const reasonText = z.string().max(256);
const base = { seq: z.int().min(1), at: EpochMsSchema };

/** A slice's durable configuration: limits and, for CPU, the reserved cores and policy. */
export const SliceConfigSchema = z.object({
  limits: LimitsSchema,
  reservedCores: z.array(CoreIdSchema).max(4096).optional(),
  policy: CpuPolicySchema.optional(),
});

/**
 * A deadline on the host's monotonic clock (CLOCK_MONOTONIC: ms since its boot, shared by its processes, never steps)
 * and the boot it counts in: journaled beside a reservation's or a grace period's expiresAt, so a restart in the same
 * boot ends it after its duration whatever the wall clock did meanwhile. Absent in records written before it, and
 * where the host's boot id cannot be read; a replay after a reboot falls back to expiresAt.
 */
export const MonotonicDeadlineSchema = z.object({ bootId: z.string().min(1).max(64), monotonicMs: int });
export type MonotonicDeadline = z.infer<typeof MonotonicDeadlineSchema>;

/** A victim of a preemption: its allocation, the request that made it, and the release's own request id. */
export const PreemptedVictimSchema = z.object({
  allocationId: AllocationIdSchema,
  allocationRequestId: RequestIdSchema,
  releaseRequestId: RequestIdSchema,
});
export type PreemptedVictim = z.infer<typeof PreemptedVictimSchema>;

/**
 * One journaled change: allocated / reserved (the full Allocation, and the id counter it was drawn from),
 * activated, released (with the release's request id and reason), expired, limits_updated (the slice's whole new
 * configuration), cordoned / uncordoned, fenced (a request id's recorded fencing epoch raised: by the fence verb, an
 * allocate retried at a higher epoch, or an allocate refused at its epoch), preempted (victims released and the preemptor
 * allocated, in one record), resized (a live allocation's memory and vCPUs changed in place, in one record).
 */
export const HostRecordSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('allocated'), ...base, allocation: AllocationSchema, idCounter: int }),
  z.object({
    kind: z.literal('reserved'),
    ...base,
    allocation: AllocationSchema,
    idCounter: int,
    deadline: MonotonicDeadlineSchema.optional(),
  }),
  z.object({ kind: z.literal('activated'), ...base, allocationId: AllocationIdSchema, requestId: RequestIdSchema }),
  // requestId: the release's own (its idempotency key). allocationRequestId: the released allocation's, from this version
  // on, so the coordinators can find the placement and give its quota back (its event names the placement).
  z.object({
    kind: z.literal('released'),
    ...base,
    allocationId: AllocationIdSchema,
    requestId: RequestIdSchema,
    allocationRequestId: RequestIdSchema.optional(),
    reason: reasonText,
  }),
  // requestId: from this version on, so the coordinators can give the quota of an expired reservation back.
  z.object({ kind: z.literal('expired'), ...base, allocationId: AllocationIdSchema, requestId: RequestIdSchema.optional() }),
  z.object({ kind: z.literal('limits_updated'), ...base, resourceType: ResourceTypeSchema, config: SliceConfigSchema, force: z.boolean() }),
  z.object({ kind: z.literal('cordoned'), ...base, reason: reasonText }),
  z.object({ kind: z.literal('uncordoned'), ...base, reason: reasonText }),
  z.object({ kind: z.literal('fenced'), ...base, requestId: RequestIdSchema, fence: FenceSchema }),
  // A resize, memory and CPU in one record: requestId is the resize's own (its idempotency key), allocation the whole
  // allocation after it (new granted amounts and CPU grant), previous the amounts before.
  z.object({
    kind: z.literal('resized'),
    ...base,
    requestId: RequestIdSchema,
    allocation: AllocationSchema,
    previous: z.object({ memoryMiB: int, vcpus: int }),
  }),
  // A preemption with a grace period begins: the victims marked releasing, the preemptor (reserved, expiresAt = the
  // deadline, no CPU grant) waiting; at the deadline a 'preempted' record ends it (or 'expired' for the preemptor).
  // A reservation and a grace period carry their deadline on the monotonic clock too (MonotonicDeadlineSchema).
  z.object({
    kind: z.literal('preempting'),
    ...base,
    allocation: AllocationSchema,
    idCounter: int,
    victims: z.array(PreemptedVictimSchema).min(1).max(MAX_PREEMPTION_VICTIMS),
    deadline: MonotonicDeadlineSchema.optional(),
  }),
  // A preemption, all in one record: the victims released and the preemptor allocated (see HostState.preempt).
  z.object({
    kind: z.literal('preempted'),
    ...base,
    allocation: AllocationSchema,
    idCounter: int,
    victims: z.array(PreemptedVictimSchema).min(1).max(MAX_PREEMPTION_VICTIMS),
  }),
]);
export type HostRecord = z.infer<typeof HostRecordSchema>;
export type HostRecordKind = HostRecord['kind'];

/** A released allocation kept for the retention window, so a late retry of its allocate returns it instead of allocating again. */
export const RetainedReleaseSchema = z.object({
  allocation: AllocationSchema,
  releasedAt: EpochMsSchema,
  releaseRequestId: RequestIdSchema,
});
export type RetainedRelease = z.infer<typeof RetainedReleaseSchema>;

/** A resize kept for the retention window, so a retry of its request id answers what it did: the allocation after it. */
export const RetainedResizeSchema = z.object({ requestId: RequestIdSchema, allocation: AllocationSchema, at: EpochMsSchema });
export type RetainedResize = z.infer<typeof RetainedResizeSchema>;

/** A request id's recorded fencing epoch and when it was recorded. */
export const RecordedFenceSchema = z.object({ requestId: RequestIdSchema, fence: FenceSchema, at: EpochMsSchema });
export type RecordedFence = z.infer<typeof RecordedFenceSchema>;

/** Everything needed to rebuild a host's state without its earlier records (for ledger compaction). */
export const HostStateSnapshotSchema = z.object({
  version: z.int().min(1).max(1),
  nodeId: NodeIdSchema,
  /** The seq of the last record the snapshot includes. */
  seq: int,
  idCounter: int,
  cordon: z.object({ cordoned: z.boolean(), reason: reasonText }),
  configs: z.array(z.object({ resourceType: ResourceTypeSchema, config: SliceConfigSchema })),
  live: z.array(AllocationSchema),
  released: z.array(RetainedReleaseSchema),
  /**
   * Recorded fences above the epoch their request id's allocation was committed at, or of request ids without an
   * allocation (kept for the retention window from `at`). Absent in snapshots written before fencing.
   */
  fences: z.array(RecordedFenceSchema).optional(),
  /** Preemptions in their grace period (their victims are in `live`, releasing). */
  preempting: z.array(z.object({ allocation: AllocationSchema, victims: z.array(PreemptedVictimSchema) })).optional(),
  /** Resizes within the retention window (absent in snapshots written before resize). */
  resizes: z.array(RetainedResizeSchema).optional(),
  /**
   * The monotonic deadlines of the live reservations and the preemptions in their grace period, by allocation id
   * (absent in snapshots written before them, or without a boot id).
   */
  deadlines: z.array(z.object({ allocationId: AllocationIdSchema, ...MonotonicDeadlineSchema.shape })).optional(),
});
export type HostStateSnapshot = z.infer<typeof HostStateSnapshotSchema>;

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

/** One settled promise shared by every in-memory append: reacting to it allocates nothing new. */
const DURABLE: Promise<void> = Promise.resolve();

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
    return DURABLE;
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
    return Promise.resolve(
      this.#snapshot === undefined ? { records: [...this.#records] } : { snapshot: this.#snapshot, records: [...this.#records] },
    );
  }
}
