import {
  err,
  errorOf,
  LEGACY_GROUP_METADATA_KEY,
  ok,
  PREEMPTION_PRIORITY_GAP,
  tenantGroupKey,
  type AllotError,
  type Allocation,
  type AllocationRequest,
  type Availability,
  type ResourceType,
  type Result,
  type TenantUsage,
} from '@allot/core';
import type { HostRecord, HostStateSnapshot, MonotonicDeadline, PreemptedVictim, RecordedFence, RetainedRelease } from './records.ts';
import { attachMemoryGrant, bindMemoryToCores } from '../memory/numa-memory-slice.ts';
import { numaCells, refusalInCells } from './numa-cell.ts';
import { replayResize, ResizeBook, resizeLive, type ResizeRequest } from './resize.ts';
import { RetainedById } from './retained-by-id.ts';
import { sameValue } from './same-request.ts';
import type { ResourceSlice, SliceChange, SliceConfig } from './slice.ts';

export interface HostStateOptions {
  readonly nodeId: string;
  readonly now: () => number;
  /**
   * Monotonic ms (never steps; restarts with the process): what the retention window is measured on, from when this
   * process learned of each released allocation, fence and resize (for those read back from the ledger, the start), so
   * neither a wall-clock step nor a restart after one forgets a request id early. Default: `now`.
   */
  readonly monotonic?: () => number;
  /**
   * The host's boot id (Clock.bootId). When set, `monotonic` is the host's clock (ms since that boot, shared by its
   * processes): each reservation's and grace period's deadline is journaled on it too, and a replay in the same boot
   * ends it on it, whatever the wall clock did while the process was down. Default: none (deadlines replay from
   * their wall-clock expiresAt).
   */
  readonly bootId?: string | undefined;
  /** How long a released allocation's request id is remembered (a late allocate retry returns it). Default 1 hour. */
  readonly releasedRetentionMs?: number;
  /** Upper bound of remembered released allocations, whatever the window. Default 100,000. */
  readonly maxRetained?: number;
}

/** A state change: the allocation it concerns, and the record to journal (absent when nothing changed: a retry). */
export interface Change {
  readonly allocation: Allocation;
  readonly record?: HostRecord;
}

export interface ReleaseRequest {
  readonly requestId: string;
  readonly allocationId?: string;
  readonly allocationRequestId?: string;
  readonly reason?: string;
  /** Refused when the allocation's request id has a higher recorded fence (someone drove it since). */
  readonly fence?: number;
}

/** What a preempt answers: the preemptor's allocation and the victims as they are now. */
export interface Preemption {
  readonly allocation: Allocation;
  readonly victims: readonly Allocation[];
}

/** A preemption in its grace period: the preemptor (reserved, expiresAt = the deadline, no CPU grant yet) and its victims. */
interface PendingPreemption {
  readonly allocation: Allocation;
  readonly victims: PreemptedVictim[];
}

/** What the fence verb answers: the request id's allocation, if any, and its recorded fence. */
export interface FenceAnswer {
  readonly allocation: Allocation | null;
  readonly fence: number;
}

/** Which slices a request involves (the ones it asks a positive amount of), in the state's slice order. */
function involved(slices: SliceMap, request: AllocationRequest): ResourceSlice[] {
  const out: ResourceSlice[] = [];
  for (const slice of slices.list) if (slice.amountOf(request) > 0) out.push(slice);
  return out;
}

/**
 * The slices by type, plus the same slices as an array kept in step (rebuilt only when the map changes), so the hot
 * path walks them without allocating an iterator or an array per request.
 */
export class SliceMap extends Map<ResourceType, ResourceSlice> {
  #list: ResourceSlice[] | undefined;
  get list(): readonly ResourceSlice[] {
    if (this.#list === undefined) this.#list = [...this.values()];
    return this.#list;
  }
  override set(type: ResourceType, slice: ResourceSlice): this {
    this.#list = undefined;
    return super.set(type, slice);
  }
  override delete(type: ResourceType): boolean {
    this.#list = undefined;
    return super.delete(type);
  }
  override clear(): void {
    this.#list = undefined;
    super.clear();
  }
}

/**
 * What the state remembers of one request id: its allocation, live (releasedAt -1) or released and retained for the
 * retention window. Mutated in place when the allocation is activated or released, so a release moves no map entry
 * of the request id; once released it is a RetainedRelease and never changes again.
 */
interface Slot {
  allocation: Allocation;
  releasedAt: number;
  releaseRequestId: string;
  /** The highest fencing epoch recorded for the request id (0: none); kept as long as the slot. */
  fence: number;
  /** Monotonic instant its retention window starts (set when released, or when restored released). */
  keptSince: number;
}

const NONE_MISSING: readonly ResourceType[] = Object.freeze([]);

/** The types a request asks for that no slice handles (a shared empty list when none, the common case). */
function missingTypes(slices: Map<ResourceType, ResourceSlice>, request: AllocationRequest): readonly ResourceType[] {
  let missing: ResourceType[] | undefined;
  if (request.resources.memoryMiB > 0 && !slices.has('memory')) (missing ??= []).push('memory');
  if (request.resources.vcpus > 0 && !slices.has('cpu')) (missing ??= []).push('cpu');
  const extra = request.resources.extra;
  if (extra !== undefined) {
    for (const [type, amount] of Object.entries(extra) as [ResourceType, number][]) {
      if (amount > 0 && !slices.has(type)) (missing ??= []).push(type);
    }
  }
  return missing ?? NONE_MISSING;
}

/**
 * A host's allocation state, pure and synchronous: allocation records, the request-id index, reservations, cordon,
 * seq, per-tenant and per-group counts, over a set of resource slices. Every change is produced as a record and
 * `apply` replays records identically, so a state rebuilt from the journal is the state that wrote it.
 * Owned by one actor; never shared.
 */
export class HostState {
  readonly nodeId: string;
  readonly slices = new SliceMap();
  readonly #now: () => number;
  readonly #monotonic: () => number;
  readonly #bootId: string | undefined;
  readonly #retentionMs: number;
  readonly #maxRetained: number;
  seq = 0;
  idCounter = 0;
  cordon = { cordoned: false, reason: '' };
  readonly live = new Map<string, Allocation>();
  /** Request id -> its slot, live or retained: the idempotency index of allocate. */
  readonly #byRequest = new Map<string, Slot>();
  /** Allocation id -> slot, retained (released) allocations only; live ones are in `live`. */
  readonly #retainedById: RetainedById<Slot>;
  /**
   * Release request id -> the slot it released (a reused release id naming another allocation is a conflict). Expiries
   * are not in it: they have no request id ('expired' marks them in the slot).
   */
  readonly #releaseRequests = new Map<string, Slot>();
  /** Retained slots, oldest release first: a ring buffer (head, count), grown by doubling, pruned from the head. */
  #ring: (Slot | undefined)[] = new Array<Slot | undefined>(1024).fill(undefined);
  #ringHead = 0;
  #ringCount = 0;
  /**
   * Recorded fences of request ids with no slot (an allocate refused at its epoch, or a fence verb for an unknown
   * id), oldest record first; pruned like retained releases (window and count).
   */
  readonly #fences = new Map<string, { fence: number; at: number; keptSince: number }>();
  readonly #reservations = new Set<string>();
  /** Allocation id -> when its reservation or grace period ends, on the monotonic clock (see #dueOf). */
  readonly #due = new Map<string, number>();
  /** The earliest reservation's due (monotonic). */
  #nextExpiry: number | undefined;
  /** Preemptions in their grace period, by the preemptor's request id (see preempt). */
  readonly #pending = new Map<string, PendingPreemption>();
  /** Victim allocation id -> the request id of the preemptor waiting for it. */
  readonly #preempting = new Map<string, string>();
  /** The earliest grace period's due (monotonic). */
  #nextDeadline: number | undefined;
  readonly tenants = new Map<string, TenantUsage>();
  /** Live allocations per group, keyed per tenant (tenantGroupKey): one tenant's group never counts against another's. */
  readonly groups = new Map<string, number>();
  /** Resize request ids and what they did (resize.ts), kept like released allocations. */
  readonly resizes: ResizeBook;

  constructor(options: HostStateOptions) {
    this.nodeId = options.nodeId;
    this.#now = options.now;
    this.#monotonic = options.monotonic ?? options.now;
    this.#bootId = options.bootId;
    this.#retentionMs = options.releasedRetentionMs ?? 3_600_000;
    this.#maxRetained = options.maxRetained ?? 100_000;
    this.#retainedById = new RetainedById<Slot>(options.nodeId);
    this.resizes = new ResizeBook(this.#retentionMs, this.#maxRetained, this.#monotonic);
  }

  /** True when some reservation's expiry has passed (expireDue has work); false costs no clock read without reservations. */
  hasDue(): boolean {
    const next = this.nextDue;
    return next !== undefined && next <= this.#monotonic();
  }

  /** When the earliest reservation expires or grace period ends, on the monotonic clock: what the expiry timer waits for. */
  get nextDue(): number | undefined {
    const a = this.#nextExpiry;
    const b = this.#nextDeadline;
    return a === undefined ? b : b === undefined ? a : Math.min(a, b);
  }

  /** The same in epoch ms, as this process's wall clock reads it now. */
  get nextExpiry(): number | undefined {
    const due = this.nextDue;
    return due === undefined ? undefined : this.#now() + (due - this.#monotonic());
  }

  /**
   * When a deadline falls on this process's monotonic clock: the journaled monotonic deadline when it was taken in this
   * boot; otherwise (after a reboot, or from a record written before monotonic deadlines) the wall-clock instant
   * expiresAt, as far ahead as the wall clock says now: the only information left.
   */
  #dueOf(allocation: Allocation, deadline: MonotonicDeadline | undefined): number {
    if (deadline !== undefined && deadline.bootId === this.#bootId) return deadline.monotonicMs;
    return this.#monotonic() + ((allocation.expiresAt ?? 0) - this.#now());
  }

  /** A new deadline `ms` from now (monotonic, whole ms), and its journaled form when the boot is known. */
  #deadlineIn(ms: number): { due: number; deadline?: MonotonicDeadline } {
    const due = Math.ceil(this.#monotonic()) + ms;
    return this.#bootId === undefined ? { due } : { due, deadline: { bootId: this.#bootId, monotonicMs: due } };
  }

  get reservationCount(): number {
    return this.#reservations.size;
  }

  // ---------- reads ----------

  findLive(allocationId: string): Allocation | undefined {
    return this.live.get(allocationId);
  }

  /** The live allocation a request id made, if any. */
  liveOf(requestId: string): Allocation | undefined {
    const slot = this.#byRequest.get(requestId);
    return slot !== undefined && slot.releasedAt < 0 ? slot.allocation : undefined;
  }

  /** A live or recently released allocation by id. */
  find(allocationId: string): Allocation | undefined {
    return this.live.get(allocationId) ?? this.#retainedById.get(allocationId)?.allocation;
  }

  retainedCount(): number {
    return this.#ringCount;
  }

  check(request: AllocationRequest): Availability {
    const figures: Record<string, { requested: number; free: number; effectiveCapacity: number }> = {};
    let reason: { code: string; message: string } | undefined;
    for (const type of missingTypes(this.slices, request)) {
      figures[type] = {
        requested:
          type === 'memory'
            ? request.resources.memoryMiB
            : type === 'cpu'
              ? request.resources.vcpus
              : (request.resources.extra?.[type] ?? 0),
        free: 0,
        effectiveCapacity: 0,
      };
      reason ??= { code: 'insufficient_capacity', message: `no ${type} manager on node ${this.nodeId}` };
    }
    // The same single-NUMA-node fitting as a take (numa-cell.ts), so the answer predicts what allocate does.
    const cells = numaCells(this.slices, request);
    if (!cells.ok) reason ??= { code: cells.error.code, message: cells.error.message };
    const within = cells.ok ? cells.value : undefined;
    for (const slice of involved(this.slices, request)) {
      figures[slice.type] = slice.figures(request);
      const fits = slice.check(request, within);
      if (!fits.ok) {
        const refusal = within === undefined ? fits.error : refusalInCells(this.slices, request, within, fits.error);
        reason ??= { code: refusal.code, message: refusal.message };
      }
    }
    const group = this.#groupRefusal(request);
    if (group !== undefined) reason ??= { code: group.code, message: group.message };
    if (this.cordon.cordoned) reason = { code: 'unavailable', message: `node ${this.nodeId} is cordoned: ${this.cordon.reason}` };
    return reason === undefined ? { fits: true, figures } : { fits: false, figures, reason };
  }

  // ---------- changes ----------

  /** Allocates (or reserves, when `reservation`) all of the request or nothing. */
  allocate(request: AllocationRequest, reservation: boolean, fence?: number): Result<Change> {
    const seen = this.#byRequest.get(request.requestId)?.allocation;
    if (seen !== undefined) {
      if (sameValue(seen.request, request)) return ok({ allocation: seen });
      return err('conflict', `request id ${request.requestId} was already used for a different request (allocation ${seen.id})`, {
        requestId: request.requestId,
        allocationId: seen.id,
      });
    }
    if (fence !== undefined) {
      const recorded = this.#fences.get(request.requestId)?.fence ?? 0;
      if (fence <= recorded)
        return err('conflict', `request id ${request.requestId} was fenced at ${recorded}; an allocate at fence ${fence} is stale`, {
          requestId: request.requestId,
          reason: 'fenced',
          fence: recorded,
        });
    }
    if (this.cordon.cordoned)
      return err('unavailable', `node ${this.nodeId} is cordoned: ${this.cordon.reason}`, { nodeId: this.nodeId, cordoned: true });
    const group = this.#groupRefusal(request);
    if (group !== undefined) return { ok: false, error: group };
    const missing = missingTypes(this.slices, request);
    if (missing.length > 0) {
      return err('insufficient_capacity', `no ${missing.join(', ')} manager on node ${this.nodeId}`, {
        resourceType: missing[0],
        requested: 0,
        free: 0,
        effectiveCapacity: 0,
        nodeId: this.nodeId,
      });
    }
    const cells = numaCells(this.slices, request);
    if (!cells.ok) return cells;
    const within = cells.value;
    const id = `${this.nodeId}:${this.idCounter + 1}`;
    const slices = this.slices.list;
    let cpu: Allocation['cpu'] = null;
    for (let k = 0; k < slices.length; k += 1) {
      const slice = slices[k] as ResourceSlice;
      if (slice.amountOf(request) <= 0) continue;
      const grant = slice.take(id, request, reservation, within);
      if (!grant.ok) {
        // All or nothing, inside this synchronous turn: nobody can observe the part already taken (the involved
        // slices before this one, each of which took).
        for (let j = 0; j < k; j += 1) {
          const t = slices[j] as ResourceSlice;
          if (t.amountOf(request) > 0) t.free(id);
        }
        return within === undefined ? grant : { ok: false, error: refusalInCells(this.slices, request, within, grant.error) };
      }
      if (grant.value !== null) cpu = grant.value;
    }
    const bound = bindMemoryToCores(this.slices, id, request, cpu);
    if (!bound.ok) {
      for (const slice of involved(this.slices, request)) slice.free(id);
      return bound;
    }
    const held = this.#pending.size === 0 ? undefined : this.#heldForWaiting();
    if (held !== undefined) {
      for (const slice of involved(this.slices, request)) slice.free(id);
      return { ok: false, error: held };
    }
    const now = this.#now();
    const allocation: Allocation = {
      id,
      requestId: request.requestId,
      tenantId: request.tenantId,
      nodeId: this.nodeId,
      request,
      granted: request.resources,
      cpu,
      status: reservation ? 'reserved' : 'active',
      priority: request.priority,
      createdAt: now,
      updatedAt: now,
    };
    const ttl = reservation ? this.#deadlineIn(request.reservation?.ttlMs ?? 0) : undefined;
    if (reservation) allocation.expiresAt = now + (request.reservation?.ttlMs ?? 0);
    if (fence !== undefined) allocation.fence = fence;
    attachMemoryGrant(this.slices, allocation);
    this.idCounter += 1;
    this.seq += 1;
    this.#addLive(allocation, ttl?.due);
    if (ttl === undefined)
      return ok({ allocation, record: { kind: 'allocated', seq: this.seq, at: now, allocation, idCounter: this.idCounter } });
    const record: HostRecord = { kind: 'reserved', seq: this.seq, at: now, allocation, idCounter: this.idCounter };
    if (ttl.deadline !== undefined) record.deadline = ttl.deadline;
    return ok({ allocation, record });
  }

  /**
   * Anti-affinity, enforced here because the coordinator's view may be stale: a request naming a group and a
   * per-node maximum is refused once that many live allocations of the group are on this host. Refused as
   * insufficient_capacity, so a scheduler tries another node.
   */
  #groupRefusal(request: AllocationRequest, leaving: (group: string) => number = () => 0): AllotError | undefined {
    return this.#affinityRefusal(request, leaving) ?? this.#antiAffinityRefusal(request, leaving);
  }

  /** Required per-node affinity (the request's `affinity`): each group needs a live allocation here that stays. */
  #affinityRefusal(request: AllocationRequest, leaving: (group: string) => number): AllotError | undefined {
    const missing = request.affinity?.find(
      (name) => (this.groups.get(tenantGroupKey(request.tenantId, name)) ?? 0) - leaving(tenantGroupKey(request.tenantId, name)) <= 0,
    );
    if (missing === undefined) return undefined;
    return errorOf('insufficient_capacity', `affinity group ${missing} has no allocation on node ${this.nodeId}`, {
      group: missing,
      nodeId: this.nodeId,
    });
  }

  #antiAffinityRefusal(request: AllocationRequest, leaving: (group: string) => number): AllotError | undefined {
    if (request.group === undefined) return undefined;
    const { name, maxPerNode } = request.group;
    const key = tenantGroupKey(request.tenantId, name);
    const count = this.groups.get(key) ?? 0;
    if (count - leaving(key) < maxPerNode) return undefined;
    return errorOf(
      'insufficient_capacity',
      `anti-affinity group ${name} already has ${count} of at most ${maxPerNode} allocations on node ${this.nodeId}`,
      { group: name, count, maxPerNode, nodeId: this.nodeId },
    );
  }

  release(target: ReleaseRequest): Result<Change> {
    let allocation: Allocation | undefined;
    if (target.allocationId !== undefined) allocation = this.find(target.allocationId);
    else if (target.allocationRequestId !== undefined) allocation = this.#byRequest.get(target.allocationRequestId)?.allocation;
    else return err('invalid_request', 'name the allocation by allocationId or allocationRequestId', { field: 'allocationId' });
    if (allocation === undefined) {
      const name = target.allocationId ?? target.allocationRequestId;
      return err('not_found', `no allocation ${name} on node ${this.nodeId}`, {
        allocationId: target.allocationId,
        allocationRequestId: target.allocationRequestId,
      });
    }
    if (
      target.allocationId !== undefined &&
      target.allocationRequestId !== undefined &&
      allocation.requestId !== target.allocationRequestId
    ) {
      return err('invalid_request', `allocation ${allocation.id} was not created by request ${target.allocationRequestId}`, {
        field: 'allocationRequestId',
      });
    }
    if (target.fence !== undefined) {
      const recorded = this.recordedFence(allocation.requestId);
      if (recorded > target.fence)
        return err(
          'conflict',
          `request id ${allocation.requestId} was fenced at ${recorded} since; a release at fence ${target.fence} is stale`,
          { allocationId: allocation.id, reason: 'fenced', fence: recorded },
        );
    }
    const earlier = this.#releaseRequests.get(target.requestId)?.allocation.id;
    if (earlier !== undefined && earlier !== allocation.id) {
      return err('conflict', `release request id ${target.requestId} was already used to release ${earlier}`, {
        requestId: target.requestId,
        allocationId: earlier,
      });
    }
    const waiting = this.#graceRefusal(allocation);
    if (waiting !== undefined) return { ok: false, error: waiting };
    // Releasing what is already released succeeds and changes nothing.
    if (!this.live.has(allocation.id)) return ok({ allocation });
    const now = this.#now();
    this.seq += 1;
    const record: HostRecord = {
      kind: 'released',
      seq: this.seq,
      at: now,
      allocationId: allocation.id,
      requestId: target.requestId,
      allocationRequestId: allocation.requestId,
      reason: target.reason ?? 'released',
    };
    return ok({ allocation: this.#removeLive(allocation, now, target.requestId), record });
  }

  activate(allocationId: string, requestId: string): Result<Change> {
    const allocation = this.live.get(allocationId) ?? this.#pendingById(allocationId);
    const waiting = allocation === undefined ? undefined : this.#graceRefusal(allocation);
    if (waiting !== undefined) return { ok: false, error: waiting };
    if (allocation === undefined) {
      const gone = this.#retainedById.get(allocationId);
      if (gone !== undefined) {
        return err(
          'conflict',
          `allocation ${allocationId} is no longer held (${gone.releaseRequestId === 'expired' ? 'its reservation expired' : 'released'} at ${gone.releasedAt})`,
          { allocationId, status: gone.allocation.status },
        );
      }
      return err('not_found', `no reservation ${allocationId} on node ${this.nodeId}`, { allocationId });
    }
    if (allocation.status === 'active') return ok({ allocation });
    const now = this.#now();
    this.seq += 1;
    const record: HostRecord = { kind: 'activated', seq: this.seq, at: now, allocationId, requestId };
    return ok({ allocation: this.#activate(allocation, now), record });
  }

  /** Expires every reservation whose deadline has passed (on the monotonic clock, see #dueOf); returns the records to journal. */
  expireDue(): HostRecord[] {
    const now = this.#now();
    const mono = this.#monotonic();
    const records: HostRecord[] = [];
    if (this.#nextDeadline !== undefined && this.#nextDeadline <= mono) this.#finishDue(mono, now, records);
    if (this.#nextExpiry === undefined || this.#nextExpiry > mono) return records;
    for (const id of [...this.#reservations]) {
      const allocation = this.live.get(id);
      const due = this.#due.get(id);
      if (allocation === undefined || due === undefined || due > mono) continue;
      this.seq += 1;
      records.push({ kind: 'expired', seq: this.seq, at: now, allocationId: id, requestId: allocation.requestId });
      this.#removeLive(allocation, now, 'expired');
    }
    return records;
  }

  /** Grows or shrinks a live allocation's memory and vCPUs in place, all or nothing (resize.ts). */
  resize(request: ResizeRequest): Result<Change> {
    return resizeLive(this, request, this.#now());
  }

  /** Puts a resized allocation in place of the live one of its id: the map, its request id's slot and the counts. */
  replaceLive(next: Allocation): void {
    const before = this.live.get(next.id);
    if (before === undefined) return;
    this.#count(before, -1);
    this.#count(next, 1);
    this.live.set(next.id, next);
    this.#liveSlot(before).allocation = next;
  }

  setCordon(cordoned: boolean, reason: string): HostRecord | undefined {
    if (this.cordon.cordoned === cordoned && this.cordon.reason === reason) return undefined;
    this.seq += 1;
    this.cordon = { cordoned, reason };
    return { kind: cordoned ? 'cordoned' : 'uncordoned', seq: this.seq, at: this.#now(), reason };
  }

  // ---------- fencing ----------

  /** The highest fencing epoch recorded for a request id (0: none). */
  recordedFence(requestId: string): number {
    return this.#byRequest.get(requestId)?.fence ?? this.#fences.get(requestId)?.fence ?? 0;
  }

  /** Records `fence` for a request id when it is above the recorded one; returns the record to journal, if any. */
  raiseFence(requestId: string, fence: number): HostRecord | undefined {
    if (fence <= this.recordedFence(requestId)) return undefined;
    const now = this.#now();
    this.seq += 1;
    this.#setFence(requestId, fence, now);
    return { kind: 'fenced', seq: this.seq, at: now, requestId, fence };
  }

  /** What the fence verb answers for a request id. */
  fenceOf(requestId: string): FenceAnswer {
    return { allocation: this.#byRequest.get(requestId)?.allocation ?? null, fence: this.recordedFence(requestId) };
  }

  #setFence(requestId: string, fence: number, at: number): void {
    const slot = this.#byRequest.get(requestId);
    if (slot !== undefined) {
      if (fence > slot.fence) slot.fence = fence;
      return;
    }
    const known = this.#fences.get(requestId);
    if (known !== undefined && known.fence >= fence) return;
    // Re-inserted so the map stays in order of recording (the prune walks it from the oldest).
    this.#fences.delete(requestId);
    this.#fences.set(requestId, { fence, at, keptSince: this.#monotonic() });
    this.#pruneFences();
  }

  #pruneFences(): void {
    const now = this.#monotonic();
    for (const [requestId, f] of this.#fences) {
      if (now - f.keptSince < this.#retentionMs && this.#fences.size <= this.#maxRetained) break;
      this.#fences.delete(requestId);
    }
  }

  updateConfig(type: ResourceType, change: SliceChange, force: boolean): Result<{ config: SliceConfig; record: HostRecord }> {
    const slice = this.slices.get(type);
    if (slice === undefined) return err('not_found', `no ${type} manager on node ${this.nodeId}`, { resourceType: type });
    const next = slice.reconfigure(change, force);
    if (!next.ok) return next;
    this.seq += 1;
    return ok({
      config: next.value,
      record: { kind: 'limits_updated', seq: this.seq, at: this.#now(), resourceType: type, config: toRecordConfig(next.value), force },
    });
  }

  // ---------- preemption ----------

  /**
   * Releases `victims` and allocates `request` in one turn and one record, or changes nothing. Each victim must be a
   * live allocation of this host at least PREEMPTION_PRIORITY_GAP points below the request (the gap the coordinator's
   * planner uses), and releasing them must make the request fit (every rule of allocate, anti-affinity counted without
   * the victims). Idempotent by the request id (a retry answers the allocation and the victims as they are now) and
   * fenced like allocate. The room check is a trial on the slices: the victims' shares are freed, the request taken,
   * and on a refusal the victims' exact grants are put back in the same turn.
   */
  preempt(
    request: AllocationRequest,
    victimIds: readonly string[],
    fence?: number,
    graceMs = 0,
  ): Result<{ allocation: Allocation; victims: Allocation[]; record?: HostRecord }> {
    const seen = this.#byRequest.get(request.requestId)?.allocation;
    if (seen !== undefined) {
      if (!sameValue(seen.request, request))
        return err('conflict', `request id ${request.requestId} was already used for a different request (allocation ${seen.id})`, {
          requestId: request.requestId,
          allocationId: seen.id,
        });
      const victims: Allocation[] = [];
      for (const id of victimIds) {
        const v = this.find(id);
        if (v !== undefined) victims.push(v);
      }
      return ok({ allocation: seen, victims });
    }
    if (fence !== undefined) {
      const recorded = this.#fences.get(request.requestId)?.fence ?? 0;
      if (fence <= recorded)
        return err('conflict', `request id ${request.requestId} was fenced at ${recorded}; a preempt at fence ${fence} is stale`, {
          requestId: request.requestId,
          reason: 'fenced',
          fence: recorded,
        });
    }
    if (this.cordon.cordoned)
      return err('unavailable', `node ${this.nodeId} is cordoned: ${this.cordon.reason}`, { nodeId: this.nodeId, cordoned: true });
    const victims = this.#preemptable(request, victimIds);
    if (!victims.ok) return victims;
    const missing = missingTypes(this.slices, request);
    if (missing.length > 0)
      return err('insufficient_capacity', `no ${missing.join(', ')} manager on node ${this.nodeId}`, {
        resourceType: missing[0],
        requested: 0,
        free: 0,
        effectiveCapacity: 0,
        nodeId: this.nodeId,
      });
    const group = this.#groupRefusalWithout(request, victims.value);
    if (group !== undefined) return { ok: false, error: group };
    const id = `${this.nodeId}:${this.idCounter + 1}`;
    for (const v of victims.value) for (const slice of involved(this.slices, v.request)) slice.free(v.id);
    let taken = this.#takeAll(id, request, false);
    const held = taken.ok && this.#pending.size > 0 ? this.#heldForWaiting() : undefined;
    if (held !== undefined) {
      for (const slice of involved(this.slices, request)) slice.free(id);
      taken = { ok: false, error: held };
    }
    if (!taken.ok) {
      this.#putBack(victims.value);
      const e = taken.error;
      return err(e.code, `releasing ${victimIds.join(', ')} does not make room for ${request.requestId}: ${e.message}`, {
        ...e.details,
        victims: [...victimIds],
      });
    }
    const now = this.#now();
    const allocation: Allocation = {
      id,
      requestId: request.requestId,
      tenantId: request.tenantId,
      nodeId: this.nodeId,
      request,
      granted: request.resources,
      cpu: taken.value,
      status: 'active',
      priority: request.priority,
      createdAt: now,
      updatedAt: now,
    };
    if (fence !== undefined) allocation.fence = fence;
    if (graceMs > 0) {
      // The room is proved; now it is held by the victims themselves (still counted, marked releasing) until the deadline.
      for (const slice of involved(this.slices, request)) slice.free(id);
      this.#putBack(victims.value);
      const waiting: Allocation = { ...allocation, cpu: null, status: 'reserved', expiresAt: now + graceMs };
      const grace = this.#deadlineIn(graceMs);
      const named = victims.value.map((v) => ({
        allocationId: v.id,
        allocationRequestId: v.requestId,
        releaseRequestId: preemptionReleaseId(v.id),
      }));
      this.idCounter += 1;
      this.seq += 1;
      const record: HostRecord = {
        kind: 'preempting',
        seq: this.seq,
        at: now,
        allocation: waiting,
        idCounter: this.idCounter,
        victims: named,
      };
      if (grace.deadline !== undefined) record.deadline = grace.deadline;
      this.#startGrace(waiting, named, now, grace.due);
      return ok({ allocation: waiting, victims: victims.value.map((v) => this.live.get(v.id) ?? v), record });
    }
    attachMemoryGrant(this.slices, allocation);
    const released: Allocation[] = [];
    const recorded: PreemptedVictim[] = [];
    for (const v of victims.value) {
      const releaseRequestId = preemptionReleaseId(v.id);
      released.push(this.#removeLive(v, now, releaseRequestId));
      recorded.push({ allocationId: v.id, allocationRequestId: v.requestId, releaseRequestId });
    }
    this.idCounter += 1;
    this.seq += 1;
    this.#addLive(allocation);
    return ok({
      allocation,
      victims: released,
      record: { kind: 'preempted', seq: this.seq, at: now, allocation, idCounter: this.idCounter, victims: recorded },
    });
  }

  /** The named victims, live here and low enough to preempt for `request`; the first that is not, as a typed refusal. */
  #preemptable(request: AllocationRequest, victimIds: readonly string[]): Result<Allocation[]> {
    if (new Set(victimIds).size !== victimIds.length)
      return err('invalid_request', 'victims: an allocation is named twice', { field: 'victims' });
    const out: Allocation[] = [];
    for (const id of victimIds) {
      const v = this.live.get(id);
      if (v === undefined) {
        const gone = this.#retainedById.get(id);
        if (gone !== undefined)
          return err('conflict', `victim ${id} is no longer held on node ${this.nodeId} (${gone.allocation.status})`, {
            reason: 'victim_gone',
            allocationId: id,
            status: gone.allocation.status,
          });
        return err('not_found', `no allocation ${id} on node ${this.nodeId}`, { reason: 'victim_unknown', allocationId: id });
      }
      const by = this.#preempting.get(id);
      if (by !== undefined)
        return err('conflict', `victim ${id} is already being preempted by ${by}`, {
          reason: 'victim_preempting',
          allocationId: id,
          preemptedBy: by,
        });
      if (v.priority > request.priority - PREEMPTION_PRIORITY_GAP) {
        return err(
          'conflict',
          `victim ${id} has priority ${v.priority}; preempting for priority ${request.priority} needs at most ${request.priority - PREEMPTION_PRIORITY_GAP}`,
          {
            reason: 'victim_priority',
            allocationId: id,
            priority: v.priority,
            preemptorPriority: request.priority,
            minGap: PREEMPTION_PRIORITY_GAP,
          },
        );
      }
      out.push(v);
    }
    return ok(out);
  }

  /**
   * A grace period begins: the victims are marked releasing (still counted, their reservations no longer expire) and
   * the preemptor waits, reserved until its deadline, outside the slices: its room is the victims'.
   */
  #startGrace(preemptor: Allocation, victims: readonly PreemptedVictim[], at: number, due: number): Result<void> {
    for (const v of victims) {
      const victim = this.live.get(v.allocationId);
      if (victim === undefined) return err('internal', `journal preempts unknown allocation ${v.allocationId}`);
      if (victim.status === 'reserved') {
        for (const slice of involved(this.slices, victim.request)) slice.markActive(victim.id);
        this.#dropReservation(victim.id);
      }
      const marked = withStatus(victim, 'releasing', at);
      this.live.set(marked.id, marked);
      this.#liveSlot(victim).allocation = marked;
    }
    this.#registerGrace(preemptor, victims, due);
    return ok(undefined);
  }

  /** The maps of a preemption in its grace period (also what a snapshot restores, its victims already releasing). */
  #registerGrace(preemptor: Allocation, victims: readonly PreemptedVictim[], due: number): void {
    this.#pending.set(preemptor.requestId, { allocation: preemptor, victims: [...victims] });
    this.#due.set(preemptor.id, due);
    for (const v of victims) this.#preempting.set(v.allocationId, preemptor.requestId);
    const fenced = this.#fences.get(preemptor.requestId);
    if (fenced !== undefined) this.#fences.delete(preemptor.requestId);
    this.#byRequest.set(preemptor.requestId, {
      allocation: preemptor,
      releasedAt: -1,
      releaseRequestId: '',
      fence: Math.max(preemptor.fence ?? 0, fenced?.fence ?? 0),
      keptSince: -1,
    });
    this.#recomputeDeadline();
  }

  /** Ends a preemption's wait (finished or abandoned); returns the fence its request id had recorded meanwhile. */
  #endGrace(requestId: string): number {
    const pending = this.#pending.get(requestId);
    if (pending === undefined) return 0;
    this.#pending.delete(requestId);
    this.#due.delete(pending.allocation.id);
    for (const v of pending.victims) this.#preempting.delete(v.allocationId);
    this.#recomputeDeadline();
    return this.#byRequest.get(requestId)?.fence ?? 0;
  }

  #recomputeDeadline(): void {
    let next: number | undefined;
    for (const p of this.#pending.values()) {
      const at = this.#due.get(p.allocation.id) ?? 0;
      if (next === undefined || at < next) next = at;
    }
    this.#nextDeadline = next;
  }

  /** Grace periods in the order their deadlines play (then by allocation id). */
  readonly #byDue = (a: PendingPreemption, b: PendingPreemption): number =>
    (this.#due.get(a.allocation.id) ?? 0) - (this.#due.get(b.allocation.id) ?? 0) || (a.allocation.id < b.allocation.id ? -1 : 1);

  #pendingById(allocationId: string): Allocation | undefined {
    for (const p of this.#pending.values()) if (p.allocation.id === allocationId) return p.allocation;
    return undefined;
  }

  /**
   * The room of every preemption in its grace period, checked after a change took capacity (in the same turn): the
   * deadlines played in a trial, then undone. The victims alone may not be the whole room (the
   * proof at its start counted what was free then), so anything that would take the rest is refused until the deadline.
   */
  #heldForWaiting(): AllotError | undefined {
    // As the deadlines will play it: in deadline order, each wait's victims freed and its request taken, the later
    // waits' victims still holding; then everything undone.
    const waits = [...this.#pending.values()].sort(this.#byDue);
    const victims: Allocation[] = [];
    const taken: Allocation[] = [];
    let refusal: AllotError | undefined;
    for (const p of waits) {
      for (const v of p.victims) {
        const victim = this.live.get(v.allocationId);
        if (victim === undefined) continue;
        for (const slice of involved(this.slices, victim.request)) slice.free(victim.id);
        victims.push(victim);
      }
      const take = this.#takeAll(p.allocation.id, p.allocation.request, false);
      if (take.ok) {
        taken.push(p.allocation);
        continue;
      }
      const deadline = p.allocation.expiresAt ?? 0;
      refusal = errorOf(
        'insufficient_capacity',
        `node ${this.nodeId} holds room for preemptor ${p.allocation.requestId} until ${deadline}: ${take.error.message}`,
        { ...take.error.details, reason: 'held_for_preemption', preemptedBy: p.allocation.requestId, deadline, nodeId: this.nodeId },
      );
      break;
    }
    for (const a of taken) for (const slice of involved(this.slices, a.request)) slice.free(a.id);
    this.#putBack(victims);
    return refusal;
  }

  /** Whether a change (a resize's growth, already applied in this turn) leaves every waiting preemption its room. */
  roomHeldForWaiting(): Result<void> {
    if (this.#pending.size === 0) return ok(undefined);
    const held = this.#heldForWaiting();
    return held === undefined ? ok(undefined) : { ok: false, error: held };
  }

  /** A victim or a preemptor in a grace period is neither released nor activated by anyone else: it is the room held. */
  #graceRefusal(allocation: Allocation): AllotError | undefined {
    const by = this.#preempting.get(allocation.id);
    const pending = this.#pending.get(by ?? allocation.requestId);
    if (pending === undefined || (by === undefined && pending.allocation.id !== allocation.id)) return undefined;
    const deadline = pending.allocation.expiresAt ?? 0;
    const what = by === undefined ? `preemptor ${allocation.id} becomes active` : `allocation ${allocation.id} is released for ${by}`;
    return errorOf('conflict', `${what} at ${deadline}, when its preemption's grace period ends`, {
      reason: 'preempting',
      allocationId: allocation.id,
      preemptedBy: pending.allocation.requestId,
      deadline,
    });
  }

  /**
   * Preemptions whose grace period is over: each is the trial of an immediate preempt, then one 'preempted' record.
   * The room was held by the victims, so only a forced limits change can make it fail; then the preemptor's hold
   * ends as 'expired' and the victims become active again.
   */
  #finishDue(mono: number, now: number, records: HostRecord[]): void {
    const due = [...this.#pending.values()].filter((p) => (this.#due.get(p.allocation.id) ?? 0) <= mono).sort(this.#byDue);
    for (const p of due) {
      const victims = p.victims.map((v) => this.live.get(v.allocationId)).filter((v): v is Allocation => v !== undefined);
      for (const v of victims) for (const slice of involved(this.slices, v.request)) slice.free(v.id);
      const taken = this.#takeAll(p.allocation.id, p.allocation.request, false);
      this.seq += 1;
      if (!taken.ok) {
        this.#putBack(victims);
        records.push({ kind: 'expired', seq: this.seq, at: now, allocationId: p.allocation.id, requestId: p.allocation.requestId });
        this.#abandonGrace(p.allocation.requestId, now);
        continue;
      }
      const allocation = withStatus(p.allocation, 'active', now);
      allocation.cpu = taken.value;
      attachMemoryGrant(this.slices, allocation);
      records.push({ kind: 'preempted', seq: this.seq, at: now, allocation, idCounter: this.idCounter, victims: p.victims });
      const fence = this.#endGrace(allocation.requestId);
      for (const v of victims) this.#removeLive(v, now, preemptionReleaseId(v.id));
      this.#addLive(allocation);
      this.#liveSlot(allocation).fence = Math.max(fence, allocation.fence ?? 0);
    }
  }

  /** A grace period that cannot end in the preemptor's allocation: the victims are active again, the preemptor gone. */
  #abandonGrace(requestId: string, at: number): void {
    const pending = this.#pending.get(requestId);
    if (pending === undefined) return;
    this.#endGrace(requestId);
    for (const v of pending.victims) {
      const victim = this.live.get(v.allocationId);
      if (victim === undefined) continue;
      const back = withStatus(victim, 'active', at);
      this.live.set(back.id, back);
      this.#liveSlot(victim).allocation = back;
    }
    const slot = this.#byRequest.get(requestId);
    if (slot === undefined) return;
    slot.allocation = withStatus(pending.allocation, 'released', at);
    slot.releasedAt = at;
    slot.releaseRequestId = 'expired';
    slot.keptSince = this.#monotonic();
    this.#retainSlot(slot);
  }

  /** Anti-affinity and affinity as allocate checks them, with the victims' members of each group already gone. */
  #groupRefusalWithout(request: AllocationRequest, victims: readonly Allocation[]): AllotError | undefined {
    const leaving = (key: string) => victims.filter((v) => groupKeyOf(v) === key).length;
    return this.#groupRefusal(request, leaving);
  }

  /** Takes the request's share of every involved slice, or none (the part taken is freed in this turn). */
  #takeAll(id: string, request: AllocationRequest, reservation: boolean): Result<Allocation['cpu']> {
    const cells = numaCells(this.slices, request);
    if (!cells.ok) return cells;
    const within = cells.value;
    const done: ResourceSlice[] = [];
    let cpu: Allocation['cpu'] = null;
    for (const slice of involved(this.slices, request)) {
      const grant = slice.take(id, request, reservation, within);
      if (!grant.ok) {
        for (const d of done) d.free(id);
        return within === undefined ? grant : { ok: false, error: refusalInCells(this.slices, request, within, grant.error) };
      }
      done.push(slice);
      if (grant.value !== null) cpu = grant.value;
    }
    const bound = bindMemoryToCores(this.slices, id, request, cpu);
    if (!bound.ok) {
      for (const d of done) d.free(id);
      return bound;
    }
    return ok(cpu);
  }

  /**
   * Re-installs victims' exact grants after a refused trial. It cannot fail (their shares were freed in this turn and
   * nothing else was taken); if it did, the throw crashes the actor, whose supervisor rebuilds it from the journal,
   * which never saw the trial.
   */
  #putBack(victims: readonly Allocation[]): void {
    for (const v of victims) {
      for (const slice of involved(this.slices, v.request)) {
        const r = slice.restore(v, v.status === 'reserved');
        if (!r.ok) throw new Error(`preemption trial: victim ${v.id} could not be put back: ${r.error.message}`);
      }
    }
  }

  // ---------- replay ----------

  /** Replays one durable record. Records at or below the current seq are skipped (already in a snapshot). */
  apply(record: HostRecord): Result<void> {
    if (record.seq <= this.seq) return ok(undefined);
    if (record.seq !== this.seq + 1)
      return err('internal', `journal gap: expected seq ${this.seq + 1}, found ${record.seq}`, {
        expected: this.seq + 1,
        found: record.seq,
      });
    switch (record.kind) {
      case 'allocated':
      case 'reserved': {
        const restored = this.#restoreAllocation(record.allocation, record.kind === 'reserved' ? record.deadline : undefined);
        if (!restored.ok) return restored;
        this.idCounter = Math.max(this.idCounter, record.idCounter);
        break;
      }
      case 'activated': {
        const allocation = this.live.get(record.allocationId);
        if (allocation === undefined) return err('internal', `journal activates unknown allocation ${record.allocationId}`);
        this.#activate(allocation, record.at);
        break;
      }
      case 'released':
      case 'expired': {
        if (
          record.kind === 'expired' &&
          record.requestId !== undefined &&
          this.#pending.get(record.requestId)?.allocation.id === record.allocationId
        ) {
          this.#abandonGrace(record.requestId, record.at);
          break;
        }
        const allocation = this.live.get(record.allocationId);
        if (allocation === undefined) return err('internal', `journal releases unknown allocation ${record.allocationId}`);
        this.#removeLive(allocation, record.at, record.kind === 'expired' ? 'expired' : record.requestId);
        break;
      }
      case 'limits_updated': {
        const slice = this.slices.get(record.resourceType);
        if (slice === undefined) return err('internal', `journal configures ${record.resourceType}, which has no manager`);
        const applied = slice.reconfigure(fullChange(record.config), true);
        if (!applied.ok) return applied;
        break;
      }
      case 'cordoned':
      case 'uncordoned':
        this.cordon = { cordoned: record.kind === 'cordoned', reason: record.reason };
        break;
      case 'fenced':
        this.#setFence(record.requestId, record.fence, record.at);
        break;
      case 'resized': {
        const resized = replayResize(this, record);
        if (!resized.ok) return resized;
        break;
      }
      case 'preempting': {
        const started = this.#startGrace(record.allocation, record.victims, record.at, this.#dueOf(record.allocation, record.deadline));
        if (!started.ok) return started;
        this.idCounter = Math.max(this.idCounter, record.idCounter);
        break;
      }
      case 'preempted': {
        const fence = this.#endGrace(record.allocation.requestId);
        for (const v of record.victims) {
          const victim = this.live.get(v.allocationId);
          if (victim === undefined) return err('internal', `journal preempts unknown allocation ${v.allocationId}`);
          this.#removeLive(victim, record.at, v.releaseRequestId);
        }
        const restored = this.#restoreAllocation(record.allocation);
        if (!restored.ok) return restored;
        if (fence > 0) this.#liveSlot(record.allocation).fence = Math.max(fence, record.allocation.fence ?? 0);
        this.idCounter = Math.max(this.idCounter, record.idCounter);
        break;
      }
    }
    this.seq = record.seq;
    return ok(undefined);
  }

  /**
   * Rebuilds from a snapshot (optional) and the records after it, on a fresh state whose slices were just reset.
   * Returns the expiry records of reservations that expired while the process was down: journal them.
   */
  restore(snapshot: HostStateSnapshot | undefined, records: readonly HostRecord[]): Result<HostRecord[]> {
    if (snapshot !== undefined) {
      if (snapshot.nodeId !== this.nodeId) return err('internal', `snapshot is of node ${snapshot.nodeId}, not ${this.nodeId}`);
      // The holders first, on slices with no core set aside for the host, then the configuration, forced: the order a
      // forced limits.update took (new reserved cores under existing holders), so whatever was accepted restores.
      for (const { resourceType: type, config } of snapshot.configs) {
        const slice = this.slices.get(type);
        if (slice === undefined) return err('internal', `snapshot configures ${type}, which has no manager`);
        slice.reset(nothingReserved(config));
      }
      const deadlines = new Map((snapshot.deadlines ?? []).map((d) => [d.allocationId, d]));
      for (const allocation of snapshot.live) {
        const restored = this.#restoreAllocation(allocation, deadlines.get(allocation.id));
        if (!restored.ok) return restored;
      }
      for (const { resourceType: type, config } of snapshot.configs) {
        const configured = this.slices.get(type)?.reconfigure(fullChange(config), true);
        if (configured !== undefined && !configured.ok) return configured;
      }
      for (const retained of snapshot.released) this.#retain(retained);
      for (const f of snapshot.fences ?? []) this.#setFence(f.requestId, f.fence, f.at);
      for (const r of snapshot.resizes ?? []) this.resizes.remember(r);
      for (const p of snapshot.preempting ?? [])
        this.#registerGrace(p.allocation, p.victims, this.#dueOf(p.allocation, deadlines.get(p.allocation.id)));
      this.seq = snapshot.seq;
      this.idCounter = snapshot.idCounter;
      this.cordon = { ...snapshot.cordon };
    }
    for (const record of records) {
      const applied = this.apply(record);
      if (!applied.ok) return applied;
    }
    this.#pruneRetained();
    return ok(this.expireDue());
  }

  /** Everything needed to rebuild this state; taken inside a turn, so it matches `seq` exactly. */
  exportState(): HostStateSnapshot {
    const configs: HostStateSnapshot['configs'] = [];
    for (const [type, slice] of this.slices) configs.push({ resourceType: type, config: toRecordConfig(slice.config()) });
    const released: RetainedRelease[] = [];
    const ring = this.#ring;
    // Past the window a retained release is only waiting for the next prune: left out.
    const oldest = this.#monotonic() - this.#retentionMs;
    for (let k = 0; k < this.#ringCount; k += 1) {
      const r = ring[(this.#ringHead + k) % ring.length];
      if (r !== undefined && r.keptSince > oldest && this.#byRequest.get(r.allocation.requestId) === r)
        released.push({ allocation: r.allocation, releasedAt: r.releasedAt, releaseRequestId: r.releaseRequestId });
    }
    const fences: RecordedFence[] = [];
    const slotFence = (slot: Slot | undefined): void => {
      if (slot !== undefined && slot.fence > (slot.allocation.fence ?? 0))
        fences.push({ requestId: slot.allocation.requestId, fence: slot.fence, at: slot.allocation.updatedAt });
    };
    for (const a of this.live.values()) slotFence(this.#byRequest.get(a.requestId));
    for (const r of released) slotFence(this.#byRequest.get(r.allocation.requestId));
    for (const requestId of this.#pending.keys()) slotFence(this.#byRequest.get(requestId));
    for (const [requestId, f] of this.#fences) if (f.keptSince > oldest) fences.push({ requestId, fence: f.fence, at: f.at });
    return {
      version: 1,
      nodeId: this.nodeId,
      seq: this.seq,
      idCounter: this.idCounter,
      cordon: { ...this.cordon },
      configs,
      live: [...this.live.values()],
      released,
      fences,
      resizes: this.resizes.export(),
      ...(this.#bootId === undefined || this.#due.size === 0 ? {} : { deadlines: this.#exportDeadlines(this.#bootId) }),
      ...(this.#pending.size === 0
        ? {}
        : { preempting: [...this.#pending.values()].map((p) => ({ allocation: p.allocation, victims: p.victims })) }),
    };
  }

  /** The due of every reservation and grace period, as a snapshot keeps them (whole ms, never below the boot). */
  #exportDeadlines(bootId: string): NonNullable<HostStateSnapshot['deadlines']> {
    return [...this.#due].map(([allocationId, due]) => ({ allocationId, bootId, monotonicMs: Math.max(0, Math.ceil(due)) }));
  }

  // ---------- bookkeeping ----------

  #restoreAllocation(allocation: Allocation, deadline?: MonotonicDeadline): Result<void> {
    const reservation = allocation.status === 'reserved';
    const done: ResourceSlice[] = [];
    const missing = missingTypes(this.slices, allocation.request);
    if (missing.length > 0) return err('internal', `allocation ${allocation.id} holds ${missing.join(', ')}, which has no manager`);
    for (const slice of involved(this.slices, allocation.request)) {
      const r = slice.restore(allocation, reservation);
      if (!r.ok) {
        for (const d of done) d.free(allocation.id);
        return r;
      }
      done.push(slice);
    }
    this.#addLive(allocation, reservation ? this.#dueOf(allocation, deadline) : undefined);
    return ok(undefined);
  }

  /** `due`: a reservation's, on the monotonic clock (default: from its expiresAt, see #dueOf). */
  #addLive(allocation: Allocation, due?: number): void {
    this.live.set(allocation.id, allocation);
    // A fence recorded before the allocation existed (an earlier refused attempt) moves into its slot.
    const fenced = this.#fences.get(allocation.requestId);
    if (fenced !== undefined) this.#fences.delete(allocation.requestId);
    this.#byRequest.set(allocation.requestId, {
      allocation,
      releasedAt: -1,
      releaseRequestId: '',
      fence: Math.max(allocation.fence ?? 0, fenced?.fence ?? 0),
      keptSince: -1,
    });
    this.#count(allocation, 1);
    if (allocation.status === 'reserved') {
      this.#reservations.add(allocation.id);
      const at = due ?? this.#dueOf(allocation, undefined);
      this.#due.set(allocation.id, at);
      if (this.#nextExpiry === undefined || at < this.#nextExpiry) this.#nextExpiry = at;
    }
  }

  /** The live slot of an allocation (created if the index lost it, which only a bug could do). */
  #liveSlot(allocation: Allocation): Slot {
    const slot = this.#byRequest.get(allocation.requestId);
    if (slot !== undefined && slot.releasedAt < 0 && slot.allocation.id === allocation.id) return slot;
    const fresh: Slot = { allocation, releasedAt: -1, releaseRequestId: '', fence: allocation.fence ?? 0, keptSince: -1 };
    this.#byRequest.set(allocation.requestId, fresh);
    return fresh;
  }

  #activate(allocation: Allocation, at: number): Allocation {
    const slices = this.slices.list;
    for (let k = 0; k < slices.length; k += 1) {
      const slice = slices[k] as ResourceSlice;
      if (slice.amountOf(allocation.request) > 0) slice.markActive(allocation.id);
    }
    // Built field by field rather than spread-and-delete: `delete` turns the object into a slow dictionary.
    const active = withStatus(allocation, 'active', at);
    this.live.set(active.id, active);
    this.#liveSlot(allocation).allocation = active;
    this.#dropReservation(active.id);
    return active;
  }

  #removeLive(allocation: Allocation, at: number, releaseRequestId: string): Allocation {
    const slices = this.slices.list;
    for (let k = 0; k < slices.length; k += 1) {
      const slice = slices[k] as ResourceSlice;
      if (slice.amountOf(allocation.request) > 0) slice.free(allocation.id);
    }
    this.live.delete(allocation.id);
    this.#count(allocation, -1);
    if (allocation.status === 'reserved') this.#dropReservation(allocation.id);
    const released = withStatus(allocation, 'released', at);
    const slot = this.#liveSlot(allocation);
    slot.allocation = released;
    slot.releasedAt = at;
    slot.releaseRequestId = releaseRequestId;
    slot.keptSince = this.#monotonic();
    this.#retainSlot(slot);
    this.#pruneRetained();
    return released;
  }

  #dropReservation(id: string): void {
    this.#reservations.delete(id);
    this.#due.delete(id);
    let next: number | undefined;
    for (const rid of this.#reservations) {
      const at = this.#due.get(rid);
      if (at !== undefined && (next === undefined || at < next)) next = at;
    }
    this.#nextExpiry = next;
  }

  /** A retained release read back from a snapshot. */
  #retain(retained: RetainedRelease): void {
    const slot: Slot = {
      allocation: retained.allocation,
      releasedAt: retained.releasedAt,
      releaseRequestId: retained.releaseRequestId,
      fence: retained.allocation.fence ?? 0,
      keptSince: this.#monotonic(),
    };
    this.#byRequest.set(slot.allocation.requestId, slot);
    this.#retainSlot(slot);
  }

  #retainSlot(slot: Slot): void {
    this.#retainedById.set(slot);
    if (slot.releaseRequestId !== 'expired') this.#releaseRequests.set(slot.releaseRequestId, slot);
    let ring = this.#ring;
    if (this.#ringCount === ring.length) {
      // Full: unroll into a twice larger buffer, oldest first.
      const grown = new Array<Slot | undefined>(ring.length * 2).fill(undefined);
      for (let k = 0; k < this.#ringCount; k += 1) grown[k] = ring[(this.#ringHead + k) % ring.length];
      this.#ring = ring = grown;
      this.#ringHead = 0;
    }
    ring[(this.#ringHead + this.#ringCount) % ring.length] = slot;
    this.#ringCount += 1;
  }

  #pruneRetained(): void {
    this.#pruneFences();
    this.resizes.prune();
    const now = this.#monotonic();
    const ring = this.#ring;
    while (this.#ringCount > 0) {
      const oldest = ring[this.#ringHead] as Slot;
      if (now - oldest.keptSince < this.#retentionMs && this.#ringCount <= this.#maxRetained) break;
      ring[this.#ringHead] = undefined;
      this.#ringHead = this.#ringHead + 1 === ring.length ? 0 : this.#ringHead + 1;
      this.#ringCount -= 1;
      if (this.#byRequest.get(oldest.allocation.requestId) === oldest) this.#byRequest.delete(oldest.allocation.requestId);
      this.#retainedById.delete(oldest);
      if (this.#releaseRequests.get(oldest.releaseRequestId) === oldest) this.#releaseRequests.delete(oldest.releaseRequestId);
    }
  }

  /** Per-tenant and per-group counts, updated in place (readers copy them: see HostManager.getHostView). */
  #count(allocation: Allocation, sign: 1 | -1): void {
    let tenant = this.tenants.get(allocation.tenantId);
    if (tenant === undefined) {
      tenant = { vms: 0, memoryMiB: 0, vcpus: 0 };
      this.tenants.set(allocation.tenantId, tenant);
    }
    tenant.vms += sign;
    tenant.memoryMiB += sign * allocation.granted.memoryMiB;
    tenant.vcpus += sign * allocation.granted.vcpus;
    if (tenant.vms === 0) this.tenants.delete(allocation.tenantId);
    const group = groupKeyOf(allocation);
    if (group !== undefined) {
      const n = (this.groups.get(group) ?? 0) + sign;
      if (n === 0) this.groups.delete(group);
      else this.groups.set(group, n);
    }
  }
}

/** The allocation's group, per tenant (tenantGroupKey). A ledger written before the typed field names it in metadata. */
function groupKeyOf(allocation: Allocation): string | undefined {
  const name = allocation.request.group?.name ?? allocation.request.metadata[LEGACY_GROUP_METADATA_KEY];
  return name === undefined ? undefined : tenantGroupKey(allocation.tenantId, name);
}

/** The release request id of a preempted victim: derived from its allocation id, so unique on the host and stable on replay. */
export function preemptionReleaseId(allocationId: string): string {
  return `${allocationId}=preempted`;
}

/** A copy of an allocation in a new status, without expiresAt (only reservations carry it). */
function withStatus(a: Allocation, status: Allocation['status'], at: number): Allocation {
  const out: Allocation = {
    id: a.id,
    requestId: a.requestId,
    tenantId: a.tenantId,
    nodeId: a.nodeId,
    request: a.request,
    granted: a.granted,
    cpu: a.cpu,
    status,
    priority: a.priority,
    createdAt: a.createdAt,
    updatedAt: at,
  };
  if (a.fence !== undefined) out.fence = a.fence;
  if (a.memory !== undefined) out.memory = a.memory;
  return out;
}

/** A slice config as a record field (drops undefined optionals so the record is plain data). */
function toRecordConfig(config: SliceConfig): SliceConfig & { reservedCores?: number[] } {
  const out: { limits: SliceConfig['limits']; reservedCores?: number[]; policy?: SliceConfig['policy'] } = { limits: config.limits };
  if (config.reservedCores !== undefined) out.reservedCores = [...config.reservedCores];
  if (config.policy !== undefined) out.policy = config.policy;
  return out;
}

/** A configuration with no resource set aside for the host: every holder of a snapshot fits on it. */
function nothingReserved(config: SliceConfig): SliceConfig {
  return {
    limits: { ...config.limits, systemReserve: 0 },
    ...(config.reservedCores === undefined ? {} : { reservedCores: [] }),
    ...(config.policy === undefined ? {} : { policy: config.policy }),
  };
}

/** A full configuration as a change that sets every field (absent limits removed). */
export function fullChange(config: SliceConfig): SliceChange {
  const change: SliceChange = { ...config.limits, hardLimit: config.limits.hardLimit ?? null, softLimit: config.limits.softLimit ?? null };
  if (config.reservedCores !== undefined) change.reservedCores = config.reservedCores;
  if (config.policy !== undefined) change.policy = config.policy;
  return change;
}
