import { err, ok, type Allocation, type Result } from '@allot/core';
import type { HostRecord, RetainedResize } from './records.ts';
import type { ResourceSlice } from './slice.ts';

/*
 * Resize: a live allocation's memory and vCPUs grown or shrunk in place, decided by the host, all or nothing across
 * the slices (memory first, then CPU; if CPU cannot grow, memory is put back in the same turn), journaled as one
 * `resized` record that carries the whole allocation after it, so a replay puts back exactly that grant. Idempotent by
 * the resize's own request id, remembered for the retention window like released allocations.
 */

/**
 * What a resize reads and changes of the host's state. HostState, which calls these functions, is one; named here so
 * that this module does not import the module that imports it (no cycles, type-only ones included).
 */
interface ResizeHost {
  readonly nodeId: string;
  readonly slices: { readonly list: readonly ResourceSlice[] };
  readonly live: ReadonlyMap<string, Allocation>;
  readonly resizes: ResizeBook;
  readonly cordon: { readonly cordoned: boolean; readonly reason: string };
  seq: number;
  find(allocationId: string): Allocation | undefined;
  replaceLive(next: Allocation): void;
  recordedFence(requestId: string): number;
  /** Refused when a preemption in its grace period would no longer find its room (a growth just applied took it). */
  roomHeldForWaiting(): Result<void>;
}

/** The allocation after a resize and the record to journal (none when a seen resize is answered again). */
interface Change {
  readonly allocation: Allocation;
  readonly record?: HostRecord;
}

/** One resize: the allocation, its new amounts, the resize's idempotency key and the coordinator's fence if any. */
export interface ResizeRequest {
  readonly requestId: string;
  readonly allocationId: string;
  readonly memoryMiB: number;
  readonly vcpus: number;
  /** Refused (`conflict`, reason `fenced`) when the allocation's request id was fenced higher since. */
  readonly fence?: number | undefined;
}

/**
 * Resize request ids -> what they did, oldest first; pruned by the retention window and a count bound. The window is
 * measured on monotonic time from when this process learned of the resize (done here, or read back from the ledger at
 * start), so a wall-clock step never shortens it.
 */
export class ResizeBook {
  readonly #byRequest = new Map<string, { resize: RetainedResize; keptSince: number }>();
  readonly #retentionMs: number;
  readonly #max: number;
  readonly #monotonic: () => number;

  constructor(retentionMs: number, max: number, monotonic: () => number) {
    this.#retentionMs = retentionMs;
    this.#max = max;
    this.#monotonic = monotonic;
  }

  get(requestId: string): RetainedResize | undefined {
    return this.#byRequest.get(requestId)?.resize;
  }

  remember(resize: RetainedResize): void {
    this.#byRequest.delete(resize.requestId);
    this.#byRequest.set(resize.requestId, { resize, keptSince: this.#monotonic() });
    this.prune();
  }

  prune(): void {
    const now = this.#monotonic();
    for (const [requestId, r] of this.#byRequest) {
      if (now - r.keptSince < this.#retentionMs && this.#byRequest.size <= this.#max) break;
      this.#byRequest.delete(requestId);
    }
  }

  /** Those still inside the window (what a snapshot keeps). */
  export(): RetainedResize[] {
    const now = this.#monotonic();
    const out: RetainedResize[] = [];
    for (const r of this.#byRequest.values()) if (now - r.keptSince < this.#retentionMs) out.push(r.resize);
    return out;
  }

  get size(): number {
    return this.#byRequest.size;
  }
}

function sameResize(done: Allocation, request: ResizeRequest): boolean {
  return done.id === request.allocationId && done.granted.memoryMiB === request.memoryMiB && done.granted.vcpus === request.vcpus;
}

/** The slices that hold a share of the allocation (the types its request asked for). */
function holding(state: ResizeHost, allocation: Allocation): ResourceSlice[] {
  return state.slices.list.filter((slice) => slice.amountOf(allocation.request) > 0);
}

/**
 * Resizes a live, active allocation: the change and its record, or the refusal (nothing changed). A seen resize
 * request id answers what it did (no record); the same id for another resize is a `conflict`.
 */
export function resizeLive(state: ResizeHost, request: ResizeRequest, now: number): Result<Change> {
  const seen = state.resizes.get(request.requestId);
  if (seen !== undefined) {
    if (sameResize(seen.allocation, request)) return ok({ allocation: seen.allocation });
    return err(
      'conflict',
      `resize request id ${request.requestId} was already used for another resize (allocation ${seen.allocation.id} to ${seen.allocation.granted.memoryMiB} MiB, ${seen.allocation.granted.vcpus} vCPUs)`,
      {
        requestId: request.requestId,
        allocationId: seen.allocation.id,
      },
    );
  }
  const allocation = state.live.get(request.allocationId);
  if (allocation === undefined) {
    const gone = state.find(request.allocationId);
    if (gone !== undefined)
      return err(
        'conflict',
        `allocation ${request.allocationId} is no longer held (${gone.status}); only an active allocation can be resized`,
        { allocationId: request.allocationId, status: gone.status, reason: 'not_active' },
      );
    return err('not_found', `no allocation ${request.allocationId} on node ${state.nodeId}`, { allocationId: request.allocationId });
  }
  if (allocation.status !== 'active') {
    return err('conflict', `allocation ${allocation.id} is a reservation; activate it before resizing`, {
      allocationId: allocation.id,
      status: allocation.status,
      reason: 'not_active',
    });
  }
  if (request.fence !== undefined) {
    const recorded = state.recordedFence(allocation.requestId);
    if (recorded > request.fence)
      return err(
        'conflict',
        `request id ${allocation.requestId} was fenced at ${recorded} since; a resize at fence ${request.fence} is stale`,
        { allocationId: allocation.id, reason: 'fenced', fence: recorded },
      );
  }
  const { granted } = allocation;
  // A resize changes amounts, never which resources an allocation holds (its slices are named by its request).
  if (granted.memoryMiB > 0 !== request.memoryMiB > 0)
    return err(
      'invalid_request',
      `memoryMiB: allocation ${allocation.id} holds ${granted.memoryMiB} MiB; a resize keeps memory ${granted.memoryMiB > 0 ? 'above 0' : 'at 0'}`,
      { field: 'memoryMiB' },
    );
  if (granted.vcpus > 0 !== request.vcpus > 0)
    return err(
      'invalid_request',
      `vcpus: allocation ${allocation.id} holds ${granted.vcpus} vCPUs; a resize keeps vCPUs ${granted.vcpus > 0 ? 'above 0' : 'at 0'}`,
      { field: 'vcpus' },
    );
  const grows = request.memoryMiB > granted.memoryMiB || request.vcpus > granted.vcpus;
  if (grows && state.cordon.cordoned)
    return err('unavailable', `node ${state.nodeId} is cordoned: ${state.cordon.reason}; a resize may only shrink`, {
      nodeId: state.nodeId,
      cordoned: true,
    });

  const to = { memoryMiB: request.memoryMiB, vcpus: request.vcpus };
  const done: ResourceSlice[] = [];
  let cpu = allocation.cpu;
  for (const slice of holding(state, allocation)) {
    const resized = slice.resize(allocation, to);
    if (!resized.ok) {
      // All or nothing inside this turn: the slices already resized get their old share back, exactly.
      for (const d of done) d.reshape(allocation);
      return {
        ok: false,
        error: { ...resized.error, details: { ...resized.error.details, allocationId: allocation.id, nodeId: state.nodeId } },
      };
    }
    done.push(slice);
    if (resized.value !== null) cpu = resized.value;
  }
  // A growth may not take the room a preemption in its grace period holds until its deadline.
  const room = grows ? state.roomHeldForWaiting() : ok(undefined);
  if (!room.ok) {
    for (const d of done) d.reshape(allocation);
    return { ok: false, error: { ...room.error, details: { ...room.error.details, allocationId: allocation.id } } };
  }
  const next: Allocation = {
    ...allocation,
    granted: { ...granted, memoryMiB: request.memoryMiB, vcpus: request.vcpus },
    cpu,
    updatedAt: now,
  };
  state.seq += 1;
  state.replaceLive(next);
  state.resizes.remember({ requestId: request.requestId, allocation: next, at: now });
  const record: HostRecord = {
    kind: 'resized',
    seq: state.seq,
    at: now,
    requestId: request.requestId,
    allocation: next,
    previous: { memoryMiB: granted.memoryMiB, vcpus: granted.vcpus },
  };
  return ok({ allocation: next, record });
}

/** Replays a `resized` record: each slice holds exactly the recorded grant (no capacity check: it was admitted). */
export function replayResize(state: ResizeHost, record: Extract<HostRecord, { kind: 'resized' }>): Result<void> {
  const before = state.live.get(record.allocation.id);
  if (before === undefined) return err('internal', `journal resizes unknown allocation ${record.allocation.id}`);
  for (const slice of holding(state, before)) {
    const reshaped = slice.reshape(record.allocation);
    if (!reshaped.ok) return reshaped;
  }
  state.replaceLive(record.allocation);
  state.resizes.remember({ requestId: record.requestId, allocation: record.allocation, at: record.at });
  return ok(undefined);
}
