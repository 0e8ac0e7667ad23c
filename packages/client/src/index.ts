/**
 * @allot/client: a scheduler's view of allot. Connect as a tenant's scheduler, then place (one VM, or a batch all or
 * nothing), check, release and activate VMs. Every mutating call carries a request id (given, or made here and returned) and is retried with that same id on
 * a timeout or when no coordinator answers: the coordinators make each request id at most one allocation, so a retry
 * can only find the first answer, never make a second VM.
 *
 * The types below are this package's public contract, written out so that the published declarations stand alone;
 * `conformance.ts` checks at compile time that they match the wire schemas the coordinators validate against.
 */
import { randomUUID } from 'node:crypto';
import { AllocationSchema } from '@allot/core';
import { connectNats, requestTyped, retryWithBackoff, silentLogger } from '@allot/nats';
import { ClusterCheckReplySchema, PlaceBatchReplySchema, PlaceReplySchema, schedSubject, type SchedVerb } from '@allot/protocol';
import type { NatsConnection } from '@nats-io/transport-node';
import type { z } from 'zod';

/** Every answer: the value, or a typed error (`code` is one of the codes below; branch on it, never on the message). */
export type Result<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: AllotError };

export type ErrorCode =
  | 'invalid_request'
  | 'quota_exceeded'
  | 'not_found'
  | 'conflict'
  | 'insufficient_capacity'
  | 'rate_limited'
  | 'internal'
  | 'unavailable'
  | 'timeout';

export interface AllotError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface ConnectOptions {
  /** NATS servers, e.g. ['tls://nats1:4222']. */
  readonly servers: readonly string[];
  /** The tenant this scheduler acts for: its requests go to allot.sched.<tenantId>.<verb>. */
  readonly tenantId: string;
  /** The scheduler's credentials, as `allot security add-tenant` issues them (one of these). */
  readonly nkeySeedFile?: string;
  readonly credsFile?: string;
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
  /** TLS: present means the connection must be TLS. */
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string };
  /** Connection name shown by `nats server report connections`. */
  readonly name?: string;
}

export interface CallOptions {
  /** The idempotency key; a new UUID when absent. Reuse it to retry a call yourself. */
  readonly requestId?: string;
  /** Each attempt's reply timeout (default 5,000 ms). */
  readonly attemptTimeoutMs?: number;
  /** No attempt starts after this (default 30,000 ms); the last answer is returned. */
  readonly deadlineMs?: number;
}

export interface Resources {
  readonly memoryMiB: number;
  readonly vcpus: number;
}

/** What to place: a VM's size and how it wants its CPUs, plus placement options (constraints, spread, preemption). */
export interface PlaceInput {
  readonly resources: Resources;
  /** 0-100; higher may preempt lower when the tenant's quota allows preemption. */
  readonly priority?: number;
  readonly cpu?: {
    readonly exclusive?: boolean;
    readonly numa?: 'any' | 'prefer' | 'require';
    readonly threadPolicy?: 'isolate' | 'require' | 'prefer';
  };
  /**
   * NUMA-local memory: memoryMiB from this NUMA node (refused when the node lacks it), and hugepages besides
   * memoryMiB, from that node or, unpinned, from any node that has them.
   */
  readonly memory?: {
    readonly numaNode?: number;
    readonly hugepages?: { readonly pageSizeMiB: 2 | 1024; readonly count: number };
  };
  /** Anti-affinity: at most maxPerNode live VMs of the group on one node. */
  readonly group?: { readonly name: string; readonly maxPerNode: number };
  /** Hold the room for ttlMs as a reservation, to be activated; absent: allocated now. */
  readonly reservation?: { readonly ttlMs: number };
  readonly metadata?: Readonly<Record<string, string>>;
  /** Placement options as the wire takes them (strategy, constraints, tolerations, topologySpread, affinity...). */
  readonly placement?: Readonly<Record<string, unknown>>;
}

export interface Allocation {
  readonly id: string;
  readonly requestId: string;
  readonly tenantId: string;
  readonly nodeId: string;
  readonly status: 'active' | 'reserved' | 'releasing' | 'released' | 'failed';
  readonly granted: { readonly memoryMiB: number; readonly vcpus: number; readonly extra?: Readonly<Record<string, number>> };
  readonly createdAt: number;
  readonly expiresAt?: number;
  /** Where the host took the memory from, when the request named a NUMA node or hugepages. */
  readonly memory?: {
    readonly numaNode?: number;
    readonly hugepages?: { readonly pageSizeMiB: number; readonly count: number; readonly numaNode: number };
  };
}

export interface Placement {
  readonly requestId: string;
  readonly nodeId: string;
  readonly allocation: Allocation;
  /** The cores of an exclusive grant (empty for shared vCPUs). */
  readonly cpuset: readonly number[];
}

export interface CheckAnswer {
  readonly fits: boolean;
  /** Best candidate nodes, in order. */
  readonly candidates: readonly string[];
  /** Nodes rejected per reason, as in "0/5 nodes are available: 3 Insufficient memory, 2 cordoned". */
  readonly rejected: Readonly<Record<string, number>>;
  readonly message: string;
}

/** How a batch is placed: its members share these placement options. */
export interface BatchOptions {
  /** At most this many of the batch's VMs on one node (anti-affinity among them); absent: no limit of its own. */
  readonly maxPerNode?: number;
  /** Placement options as the wire takes them, for every member (strategy, constraints, group...). */
  readonly placement?: Readonly<Record<string, unknown>>;
}

/** Codes worth a retry with the same request id: nothing was decided, or the answer was lost. */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set(['timeout', 'unavailable']);

export class AllotClient {
  readonly tenantId: string;
  readonly #nc: NatsConnection;

  private constructor(nc: NatsConnection, tenantId: string) {
    this.#nc = nc;
    this.tenantId = tenantId;
  }

  /** Connects as the tenant's scheduler. A refused credential is an error at once, not a retry loop. */
  static async connect(options: ConnectOptions): Promise<Result<AllotClient>> {
    const { tenantId, name, ...nats } = options;
    const nc = await connectNats(
      { ...nats, servers: [...nats.servers], requestTimeoutMs: 5_000, ...(name === undefined ? {} : { name }) } as Parameters<
        typeof connectNats
      >[0],
      { name: name ?? `allot-client-${tenantId}`, logger: silentLogger },
    );
    if (!nc.ok) return nc;
    return { ok: true, value: new AllotClient(nc.value, tenantId) };
  }

  /** Places a VM: the coordinators pick a node and its agent commits it durably before this answers. */
  async place(input: PlaceInput, options: CallOptions = {}): Promise<Result<Placement>> {
    const requestId = options.requestId ?? randomUUID();
    const { placement, ...request } = input;
    const body = { request: { ...request, requestId, tenantId: this.tenantId }, ...(placement === undefined ? {} : { placement }) };
    const reply = await this.#call('place', body, PlaceReplySchema, options);
    return reply.ok
      ? { ok: true, value: { requestId, nodeId: reply.value.nodeId, allocation: reply.value.allocation, cpuset: reply.value.cpuset } }
      : reply;
  }

  /**
   * Places every VM of `members` or none of them (a cluster, a gang): one decision, one write, all or nothing. The batch
   * id is `options.requestId` (a new UUID when absent); member i gets request id `<batchId>-<i>`, so a batch id is at
   * most 124 characters and the same batch id with the same members answers the same placements. A refusal names the
   * member that did not fit (`details.memberIndex`) and nothing was placed.
   */
  async placeBatch(
    members: readonly Omit<PlaceInput, 'placement'>[],
    batch: BatchOptions = {},
    options: CallOptions = {},
  ): Promise<Result<readonly Placement[]>> {
    const batchId = options.requestId ?? randomUUID();
    const body = {
      batchId,
      tenantId: this.tenantId,
      members: members.map((m, i) => ({ ...m, requestId: `${batchId}-${i}`, tenantId: this.tenantId })),
      ...(batch.placement === undefined ? {} : { placement: batch.placement }),
      ...(batch.maxPerNode === undefined ? {} : { maxPerNode: batch.maxPerNode }),
    };
    const reply = await this.#call('place.batch', body, PlaceBatchReplySchema, options);
    if (!reply.ok) return reply;
    return {
      ok: true,
      value: reply.value.placements.map((p) => ({
        requestId: p.allocation.requestId,
        nodeId: p.nodeId,
        allocation: p.allocation,
        cpuset: p.cpuset,
      })),
    };
  }

  /** Would this VM fit now, and where? Commits nothing. */
  check(input: PlaceInput, options: CallOptions = {}): Promise<Result<CheckAnswer>> {
    const { placement, ...request } = input;
    const body = {
      request: { ...request, requestId: options.requestId ?? randomUUID(), tenantId: this.tenantId },
      ...(placement === undefined ? {} : { placement }),
    };
    return this.#call('check', body, ClusterCheckReplySchema, options);
  }

  /** Releases the VM placed under `placementRequestId`. Releasing what is already released answers it again. */
  release(placementRequestId: string, options: CallOptions = {}): Promise<Result<Allocation>> {
    const body = { requestId: options.requestId ?? randomUUID(), placementRequestId, tenantId: this.tenantId };
    return this.#call('release', body, AllocationSchema, options) as Promise<Result<Allocation>>;
  }

  /** Turns a reservation into an allocation before it expires. */
  activate(allocationId: string, options: CallOptions = {}): Promise<Result<Allocation>> {
    const body = { requestId: options.requestId ?? randomUUID(), allocationId, tenantId: this.tenantId };
    return this.#call('activate', body, AllocationSchema, options) as Promise<Result<Allocation>>;
  }

  /** Waits for replies in flight, then closes the connection. */
  async close(): Promise<void> {
    await this.#nc.drain().catch(() => this.#nc.close());
  }

  /** One verb on the tenant's subject, retried with the same body (and so the same request id) while retrying can help. */
  async #call<S extends z.ZodType>(verb: SchedVerb, body: unknown, reply: S, options: CallOptions): Promise<Result<z.output<S>>> {
    const subject = schedSubject(verb, this.tenantId) as string;
    const timeoutMs = options.attemptTimeoutMs ?? 5_000;
    return retryWithBackoff(() => requestTyped(this.#nc, subject, body, reply, { timeoutMs }), {
      initialMs: 200,
      maxMs: 5_000,
      deadlineMs: options.deadlineMs ?? 30_000,
      holdsProcess: true,
      retryable: (r) => !r.ok && RETRYABLE.has(r.error.code),
    }) as Promise<Result<z.output<S>>>;
  }
}
