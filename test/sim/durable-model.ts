import { holdsCapacity, type Allocation, type AllocationStatus } from '@allot/core';
import type { HostRecord } from '../../packages/managers/src/index.ts';

export interface DurableAllocation {
  readonly id: string;
  readonly requestId: string;
  readonly tenantId: string;
  /** Changed by a `resized` record. */
  memoryMiB: number;
  vcpus: number;
  readonly fence: number | undefined;
  status: AllocationStatus | 'expired';
  /** The request id of the `released` record that ended it (a move's confirm releases its source under its own). */
  releasedUnder?: string;
}

/**
 * An agent's durable state as the simulator knows it: every record that reached the disk, folded in order (records
 * become durable in append order, so this is exactly what any restart can rebuild). The agent-side invariants are
 * checked on it as each record lands: committed never above effective capacity, at most one live allocation per
 * request id, and no allocate committed at a fence at or below one this node already refused.
 */
export class DurableModel {
  readonly #nodeId: string;
  readonly #fail: (message: string) => void;
  readonly #byId = new Map<string, DurableAllocation>();
  /** Live allocation ids by request id. */
  readonly #liveByRequest = new Map<string, Set<string>>();
  /** Preemptors in a grace period (a 'preempting' record): not holding anything yet, their victims releasing. */
  readonly #waiting = new Map<string, { allocation: DurableAllocation; victims: string[] }>();
  /**
   * Resize request ids committed, with the true instant each was committed: a resize is idempotent by its own request
   * id for the retention window, so one record each within that window of true time, whatever the agent's wall clock
   * did (the agent measures the window on monotonic time, from the start for what it read back from its ledger).
   */
  readonly #resizes = new Map<string, number>();
  /** The true instant the last allocation of each request id ended (released, expired): a new one only a window later. */
  readonly #endedAt = new Map<string, number>();
  readonly #retentionMs: number;
  /** The true instant the record being folded was committed (appended in the agent's memory). */
  #at = 0;
  /** The highest fence each request id was refused (or fenced) at, from `fenced` records. */
  readonly #refusedFence = new Map<string, number>();
  #memory = 0;
  #vcpus = 0;
  effective: { memoryMiB: number; vcpus: number };

  constructor(
    nodeId: string,
    effective: { memoryMiB: number; vcpus: number },
    fail: (message: string) => void,
    retentionMs = Number.POSITIVE_INFINITY,
  ) {
    this.#nodeId = nodeId;
    this.#retentionMs = retentionMs;
    this.effective = effective;
    this.#fail = fail;
  }

  get(id: string): DurableAllocation | undefined {
    return this.#byId.get(id) ?? this.#waiting.get(id)?.allocation;
  }

  /** The live allocation ids of one request id on this disk. */
  liveOf(requestId: string): ReadonlySet<string> {
    return this.#liveByRequest.get(requestId) ?? new Set();
  }

  /** Every allocation of one request id ever committed on this disk, whatever its status now. */
  allOf(requestId: string): DurableAllocation[] {
    return [...this.#byId.values()].filter((a) => a.requestId === requestId);
  }

  /** Whether a resize under this request id is on disk. */
  hasResize(requestId: string): boolean {
    return this.#resizes.has(requestId);
  }

  *liveIds(): Iterable<string> {
    for (const ids of this.#liveByRequest.values()) yield* ids;
  }

  /** Every live allocation on disk. */
  *live(): Iterable<DurableAllocation> {
    for (const id of this.liveIds()) {
      const a = this.#byId.get(id);
      if (a !== undefined) yield a;
    }
  }

  get committed(): { memoryMiB: number; vcpus: number } {
    return { memoryMiB: this.#memory, vcpus: this.#vcpus };
  }

  apply(record: HostRecord, committedAt: number): void {
    this.#at = committedAt;
    const r = record as HostRecord & { kind: string; requestId?: string; fence?: number };
    switch (r.kind) {
      case 'allocated':
      case 'reserved':
        this.#add((record as { allocation: Allocation }).allocation);
        break;
      case 'activated':
        this.#setStatus(r.allocationId as string, 'active');
        break;
      case 'released': {
        this.#setStatus(r.allocationId as string, 'released');
        const a = this.#byId.get(r.allocationId as string);
        if (a !== undefined && r.requestId !== undefined) a.releasedUnder = r.requestId;
        break;
      }
      case 'expired': {
        // A grace period that could not end in the preemptor's allocation: its victims are active again.
        const wait = this.#waiting.get(r.allocationId as string);
        if (wait === undefined) this.#setStatus(r.allocationId as string, 'expired');
        else {
          this.#waiting.delete(r.allocationId as string);
          this.#endedAt.set(wait.allocation.requestId, this.#at);
          for (const id of wait.victims) this.#setStatus(id, 'active');
        }
        break;
      }
      case 'preempting': {
        const p = record as Extract<HostRecord, { kind: 'preempting' }>;
        for (const v of p.victims) this.#setStatus(v.allocationId, 'releasing');
        this.#checkNotReused(p.allocation);
        this.#waiting.set(p.allocation.id, { allocation: durable(p.allocation), victims: p.victims.map((v) => v.allocationId) });
        break;
      }
      case 'preempted': {
        // One record: the victims released, then the preemptor committed (the capacity check sees both).
        const p = record as Extract<HostRecord, { kind: 'preempted' }>;
        const waited = this.#waiting.delete(p.allocation.id);
        for (const v of p.victims) this.#setStatus(v.allocationId, 'released');
        // A preemptor that waited was decided at its 'preempting' record; fences raised during the wait are not refusals.
        this.#add(p.allocation, waited);
        break;
      }
      case 'resized':
        this.#resize(record as Extract<HostRecord, { kind: 'resized' }>);
        break;
      case 'fenced':
        if (r.requestId !== undefined && r.fence !== undefined)
          this.#refusedFence.set(r.requestId, Math.max(this.#refusedFence.get(r.requestId) ?? 0, r.fence));
        break;
      default:
        break;
    }
  }

  #add(allocation: Allocation, decidedEarlier = false): void {
    const a = durable(allocation);
    const fence = a.fence;
    if (this.#byId.has(a.id)) this.#fail(`${this.#nodeId}: allocation id ${a.id} committed twice (second for ${a.requestId})`);
    const refused = this.#refusedFence.get(a.requestId);
    if (!decidedEarlier && fence !== undefined && refused !== undefined && fence <= refused)
      this.#fail(
        `${this.#nodeId}: ${a.requestId} committed at fence ${fence} after fence ${refused} was recorded (a stale allocate got through)`,
      );
    if (!decidedEarlier) this.#checkNotReused(allocation);
    this.#byId.set(a.id, a);
    if (a.status !== 'expired' && holdsCapacity(a.status)) this.#hold(a, +1);
  }

  /** Principle 4: a request id whose allocation ended is answered with it for the retention window, never allocated again. */
  #checkNotReused(allocation: Allocation): void {
    const ended = this.#endedAt.get(allocation.requestId);
    if (ended !== undefined && this.#at - ended < this.#retentionMs)
      this.#fail(
        `${this.#nodeId}: request ${allocation.requestId} allocated again (${allocation.id}) ${this.#at - ended} ms after its previous allocation ended (retention ${this.#retentionMs} ms)`,
      );
  }

  /** A resize changes a live allocation's committed amounts in place: the old amounts leave, the new ones are checked. */
  #resize(record: Extract<HostRecord, { kind: 'resized' }>): void {
    const a = this.#byId.get(record.allocation.id);
    if (a === undefined) {
      this.#fail(`${this.#nodeId}: a resized record for ${record.allocation.id}, which was never committed`);
      return;
    }
    const earlier = this.#resizes.get(record.requestId);
    if (earlier !== undefined && this.#at - earlier < this.#retentionMs)
      this.#fail(
        `${this.#nodeId}: resize ${record.requestId} committed twice, ${this.#at - earlier} ms apart (retention ${this.#retentionMs} ms)`,
      );
    this.#resizes.set(record.requestId, this.#at);
    if (a.status !== 'active')
      this.#fail(
        `${this.#nodeId}: resize ${record.requestId} of ${a.id}, which is ${a.status} on disk (only an active allocation resizes)`,
      );
    if (record.previous.memoryMiB !== a.memoryMiB || record.previous.vcpus !== a.vcpus)
      this.#fail(
        `${this.#nodeId}: resize ${record.requestId} of ${a.id} says it was ${record.previous.memoryMiB} MiB/${record.previous.vcpus} vCPUs, the disk says ${a.memoryMiB}/${a.vcpus}`,
      );
    this.#hold(a, -1);
    a.memoryMiB = record.allocation.granted.memoryMiB;
    a.vcpus = record.allocation.granted.vcpus;
    this.#hold(a, +1);
  }

  #setStatus(id: string, status: AllocationStatus | 'expired'): void {
    const a = this.#byId.get(id);
    if (a === undefined) {
      this.#fail(`${this.#nodeId}: a ${status} record for ${id}, which was never committed`);
      return;
    }
    const held = a.status !== 'expired' && holdsCapacity(a.status);
    if (status === 'released' || status === 'expired') this.#endedAt.set(a.requestId, this.#at);
    a.status = status;
    const holds = status !== 'expired' && holdsCapacity(status);
    if (held && !holds) this.#hold(a, -1);
    else if (!held && holds) this.#hold(a, +1);
  }

  #hold(a: DurableAllocation, sign: 1 | -1): void {
    this.#memory += sign * a.memoryMiB;
    this.#vcpus += sign * a.vcpus;
    let ids = this.#liveByRequest.get(a.requestId);
    if (sign > 0) {
      if (ids === undefined) this.#liveByRequest.set(a.requestId, (ids = new Set()));
      ids.add(a.id);
      if (ids.size > 1)
        this.#fail(`${this.#nodeId}: request ${a.requestId} holds ${ids.size} live allocations on disk (${[...ids].join(', ')})`);
      if (this.#memory > this.effective.memoryMiB)
        this.#fail(`${this.#nodeId}: ${this.#memory} MiB committed on disk, effective capacity ${this.effective.memoryMiB} MiB`);
      if (this.#vcpus > this.effective.vcpus)
        this.#fail(`${this.#nodeId}: ${this.#vcpus} vCPUs committed on disk, effective capacity ${this.effective.vcpus}`);
    } else if (ids !== undefined) {
      ids.delete(a.id);
      if (ids.size === 0) this.#liveByRequest.delete(a.requestId);
    }
  }
}

function durable(allocation: Allocation): DurableAllocation {
  return {
    id: allocation.id,
    requestId: allocation.requestId,
    tenantId: allocation.tenantId,
    memoryMiB: allocation.granted.memoryMiB,
    vcpus: allocation.granted.vcpus,
    fence: (allocation as Allocation & { fence?: number }).fence,
    status: allocation.status,
  };
}
