import {
  AgentAllocationsRequestSchema,
  AgentCordonRequestSchema,
  AgentReleaseRequestSchema,
  AllocationRequestSchema,
  decode,
  encode,
  errorOf,
  usageSubject,
  type Allocation,
  type AllocationRequest,
  type HostHealth,
  type Result,
  type UsageSnapshot,
} from '@allot/core';
import type { JetStreamClient, Msg, NatsConnection, Subscription } from '../nats-deps.ts';

/*
 * In-process stand-ins for agents, for the coordinator's unit tests and benchmark only. Each node has a tiny in-memory
 * ledger that refuses what does not fit (memory MiB, shared vCPUs), is idempotent by request id, and publishes real
 * UsageSnapshots to ALLOT_USAGE. One wildcard subscription serves every node, so 1,000 of them cost one subscription.
 * Not an agent: no durability, no CPU pinning (cpuset is empty), no probe.
 */

export interface FakeNodeSpec {
  readonly memoryMiB: number;
  readonly cores: number;
  /** Shared vCPUs per core (the CPU overcommit), default 1. */
  readonly cpuOvercommit?: number;
  readonly labels?: Record<string, string>;
}

interface FakeNode {
  readonly id: string;
  readonly spec: FakeNodeSpec;
  readonly bootId: string;
  seq: number;
  cordoned: boolean;
  /** Not answering nor publishing (a stopped or frozen agent). */
  down: boolean;
  memoryCommitted: number;
  vcpusCommitted: number;
  readonly byRequest: Map<string, Allocation>;
  /** Every allocate that committed something new: a duplicate placement shows up here. */
  commits: number;
}

export interface FakeAgentsOptions {
  readonly heartbeatMs: number;
  /** Publish a snapshot after every change (default true); the benchmark turns it off and relies on heartbeats. */
  readonly publishOnChange?: boolean;
  /** Delay before answering allocate (to hold requests in flight). */
  readonly allocateDelayMs?: number;
}

export class FakeAgents {
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #opts: FakeAgentsOptions;
  readonly nodes = new Map<string, FakeNode>();
  #sub: Subscription | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Allocates answered, all nodes. */
  allocateCalls = 0;

  constructor(nc: NatsConnection, js: JetStreamClient, opts: FakeAgentsOptions) {
    this.#nc = nc;
    this.#js = js;
    this.#opts = opts;
  }

  add(id: string, spec: FakeNodeSpec): void {
    this.nodes.set(id, { id, spec, bootId: `boot-${id}-${Date.now()}`, seq: 1, cordoned: false, down: false, memoryCommitted: 0, vcpusCommitted: 0, byRequest: new Map(), commits: 0 });
  }

  /** Starts serving and publishes every node's first snapshot (awaited: the stream has them all on return). */
  async start(): Promise<void> {
    this.#sub = this.#nc.subscribe('allot.agent.>', { callback: (e, msg) => (e ? undefined : this.#onRequest(msg)) });
    await Promise.all([...this.nodes.values()].map((n) => this.publish(n.id)));
    this.#timer = setInterval(() => {
      for (const n of this.nodes.values()) if (!n.down) void this.publish(n.id).catch(() => undefined);
    }, this.#opts.heartbeatMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#sub?.unsubscribe();
  }

  /** Stops (or resumes) one node answering and publishing. */
  setDown(id: string, down: boolean): void {
    const n = this.nodes.get(id);
    if (n) n.down = down;
  }

  live(id: string): Allocation[] {
    return [...(this.nodes.get(id)?.byRequest.values() ?? [])].filter((a) => a.status === 'active');
  }

  async publish(id: string): Promise<void> {
    const n = this.nodes.get(id);
    if (!n) return;
    await this.#js.publish(usageSubject(id), encode(this.snapshot(n)));
  }

  snapshot(n: FakeNode): UsageSnapshot {
    const ratio = n.spec.cpuOvercommit ?? 1;
    const vcpuCapacity = Math.floor(n.spec.cores * ratio);
    const tenants: UsageSnapshot['tenants'] = {};
    const groups: Record<string, number> = {};
    let count = 0;
    for (const a of n.byRequest.values()) {
      if (a.status !== 'active') continue;
      count += 1;
      const t = (tenants[a.tenantId] ??= { vms: 0, memoryMiB: 0, vcpus: 0 });
      t.vms += 1;
      t.memoryMiB += a.granted.memoryMiB;
      t.vcpus += a.granted.vcpus;
      const g = a.request.metadata['allot.group'];
      if (g !== undefined) groups[g] = (groups[g] ?? 0) + 1;
    }
    return {
      nodeId: n.id,
      bootId: n.bootId,
      seq: n.seq,
      at: Date.now(),
      labels: n.spec.labels ?? {},
      cordoned: n.cordoned,
      health: { status: 'healthy' },
      memory: { resourceType: 'memory', unit: 'MiB', capacity: n.spec.memoryMiB, systemReserve: 0, effectiveCapacity: n.spec.memoryMiB, committed: n.memoryCommitted, used: 0, reserved: 0, allocationCount: count },
      cpu: {
        resourceType: 'cpu',
        unit: 'vCPU',
        capacity: n.spec.cores,
        systemReserve: 0,
        effectiveCapacity: vcpuCapacity,
        committed: n.vcpusCommitted,
        used: 0,
        reserved: 0,
        allocationCount: count,
        sharedCores: n.spec.cores,
        exclusiveCores: 0,
        reservedCores: 0,
        sharedVcpusCommitted: n.vcpusCommitted,
        sharedVcpusCapacity: vcpuCapacity,
        cores: [],
      },
      overcommit: { memory: 1, cpu: ratio },
      tenants,
      groups,
      allocationCount: count,
      heartbeatMs: this.#opts.heartbeatMs,
    };
  }

  #onRequest(msg: Msg): void {
    const parts = msg.subject.split('.');
    const node = this.nodes.get(parts[2] ?? '');
    if (!node || node.down || !msg.reply) return;
    const verb = parts.slice(3).join('.');
    const answer = (r: Result<unknown>) => msg.respond(encode(r));
    if (verb === 'allocate' && this.#opts.allocateDelayMs) {
      setTimeout(() => answer(this.#handle(node, verb, msg.data)), this.#opts.allocateDelayMs);
      return;
    }
    answer(this.#handle(node, verb, msg.data));
  }

  #changed(n: FakeNode): void {
    n.seq += 1;
    if (this.#opts.publishOnChange !== false) void this.publish(n.id).catch(() => undefined);
  }

  #handle(n: FakeNode, verb: string, data: Uint8Array): Result<unknown> {
    switch (verb) {
      case 'allocate': {
        this.allocateCalls += 1;
        const req = decode(AllocationRequestSchema, data);
        if (!req.ok) return req;
        return this.#allocate(n, req.value);
      }
      case 'release': {
        const req = decode(AgentReleaseRequestSchema, data);
        if (!req.ok) return req;
        const a = req.value.allocationRequestId !== undefined ? n.byRequest.get(req.value.allocationRequestId) : [...n.byRequest.values()].find((x) => x.id === req.value.allocationId);
        if (a === undefined) return { ok: false, error: errorOf('not_found', `no allocation on ${n.id}`) };
        if (a.status === 'active') {
          a.status = 'released';
          n.memoryCommitted -= a.granted.memoryMiB;
          n.vcpusCommitted -= a.granted.vcpus;
          this.#changed(n);
        }
        return { ok: true, value: a };
      }
      case 'allocations': {
        const req = decode(AgentAllocationsRequestSchema, data);
        if (!req.ok) return req;
        const wanted = req.value.requestId;
        return { ok: true, value: { allocations: this.live(n.id).filter((a) => wanted === undefined || a.requestId === wanted), truncated: false } };
      }
      case 'cordon':
      case 'uncordon': {
        const req = decode(AgentCordonRequestSchema, data);
        if (!req.ok) return req;
        n.cordoned = verb === 'cordon';
        this.#changed(n);
        const h: HostHealth = { nodeId: n.id, health: { status: 'healthy' }, cordoned: n.cordoned, recoveryMs: 0, startedAt: 0 };
        return { ok: true, value: h };
      }
      case 'usage':
        return { ok: true, value: this.snapshot(n) };
      default:
        return { ok: false, error: errorOf('not_found', `fake agent has no verb ${verb}`) };
    }
  }

  #allocate(n: FakeNode, r: AllocationRequest): Result<Allocation> {
    const held = n.byRequest.get(r.requestId);
    if (held !== undefined) return { ok: true, value: held };
    if (n.cordoned) return { ok: false, error: errorOf('unavailable', `node ${n.id} is cordoned`) };
    const vcpuCapacity = Math.floor(n.spec.cores * (n.spec.cpuOvercommit ?? 1));
    if (n.memoryCommitted + r.resources.memoryMiB > n.spec.memoryMiB) {
      return { ok: false, error: errorOf('insufficient_capacity', `memory: ${r.resources.memoryMiB} MiB requested, ${n.spec.memoryMiB - n.memoryCommitted} free`, { resourceType: 'memory' }) };
    }
    if (n.vcpusCommitted + r.resources.vcpus > vcpuCapacity) {
      return { ok: false, error: errorOf('insufficient_capacity', `cpu: ${r.resources.vcpus} vCPUs requested, ${vcpuCapacity - n.vcpusCommitted} free`, { resourceType: 'cpu' }) };
    }
    n.memoryCommitted += r.resources.memoryMiB;
    n.vcpusCommitted += r.resources.vcpus;
    n.commits += 1;
    const now = Date.now();
    const a: Allocation = {
      id: `${n.id}-${n.seq}`,
      requestId: r.requestId,
      tenantId: r.tenantId,
      nodeId: n.id,
      request: r,
      granted: { memoryMiB: r.resources.memoryMiB, vcpus: r.resources.vcpus },
      cpu: null,
      status: 'active',
      priority: r.priority,
      createdAt: now,
      updatedAt: now,
    };
    n.byRequest.set(r.requestId, a);
    this.#changed(n);
    return { ok: true, value: a };
  }
}
