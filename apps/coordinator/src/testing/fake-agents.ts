import {
  AGENT_ENDPOINTS,
  AgentLimitsUpdateRequestSchema,
  AgentActivateRequestSchema,
  AgentCordonRequestSchema,
  decodeWith,
  encode,
  usageSubject,
  type AgentLimitsUpdateRequest,
  type AgentVerb,
  type HostHealth,
  type HostLimits,
  PlaceRequestSchema,
  type PlaceReply,
  type PlaceRequestInput,
} from '@allot/protocol';
import {
  type AgentResizeRequest,
  AgentResizeRequestSchema,
  type Allocation,
  type AllocationRequest,
  AllocationRequestSchema,
  AllocationStatusSchema,
  type AllotError,
  err,
  errorOf,
  ok,
  PREEMPTION_PRIORITY_GAP,
  priorityUsage,
  RequestIdSchema,
  type Result,
  tenantGroupKey,
  TenantQuotaSchema,
  unwrap,
  type UsageSnapshot,
  validate,
} from '@allot/core';
import { z } from 'zod';
import pino from 'pino';
import type { AgentCaller } from '../agents.ts';
import { PlaceConfigSchema, ReconcileConfigSchema, type PlaceConfig, type ReconcileConfig } from '../config.ts';
import { IntentStore } from '../intents/intent-store.ts';
import type { MoveDeps } from '../moves/move.ts';
import { PlaceFlow } from '../place-flow.ts';
import { QuotaService } from '../quotas.ts';
import { Reconciler } from '../reconciler.ts';
import type { Bucket } from '../store/bucket.ts';
import { MemoryBucket } from '../store/memory-bucket.ts';
import { ClusterView } from '../view.ts';
import type { JetStreamClient, Msg, NatsConnection, Subscription } from '../nats-deps.ts';

/*
 * In-process stand-ins for agents, for the coordinator's unit tests and benchmark only. Each node has a tiny in-memory
 * ledger that refuses what does not fit (memory MiB, shared vCPUs), is idempotent by request id, keeps the agents'
 * fencing contract (highest fence per request id; a refusal records its fence; `fence` verb; release with fence; paged
 * `allocations`), and publishes real UsageSnapshots to ALLOT_USAGE. Served over NATS (one wildcard subscription for
 * every node) or called in process through `caller()` (no NATS at all). Not an agent: no durability, no CPU pinning
 * (cpuset is empty), no probe.
 */

// The agents' fencing fields, read here from the raw request so the fakes keep the contract whatever core's schemas say.
const FenceSchema = z.int().min(1).optional();
const FenceRequestSchema = z.object({ requestId: RequestIdSchema, fence: z.int().min(1) });
const ReleaseRequestSchema = z.object({
  requestId: RequestIdSchema,
  allocationId: z.string().optional(),
  allocationRequestId: RequestIdSchema.optional(),
  fence: FenceSchema,
});
const PreemptRequestSchema = z.object({
  request: AllocationRequestSchema.and(z.object({ fence: FenceSchema })),
  victims: z.array(z.string()).min(1).max(64),
});
const AllocationsRequestSchema = z.object({
  status: z.union([AllocationStatusSchema, z.literal('live'), z.literal('all')]).default('live'),
  tenantId: z.string().optional(),
  requestId: RequestIdSchema.optional(),
  limit: z.int().min(1).max(1000).default(500),
  after: z.int().min(0).optional(),
});

export interface FakeNodeSpec {
  readonly memoryMiB: number;
  readonly cores: number;
  /** Shared vCPUs per core (the CPU overcommit), default 1. */
  readonly cpuOvercommit?: number;
  readonly labels?: Record<string, string>;
}

interface FakeNode {
  readonly id: string;
  /** Its limits: limits.update replaces it. */
  spec: FakeNodeSpec;
  readonly bootId: string;
  seq: number;
  cordoned: boolean;
  /** Not answering nor publishing (a stopped or frozen agent). */
  down: boolean;
  memoryCommitted: number;
  vcpusCommitted: number;
  readonly byRequest: Map<string, Allocation>;
  /** The highest fence seen per request id (journaled by a real agent before it answers). */
  readonly fences: Map<string, number>;
  /** Allocation id counter: ids are `<nodeId>:<counter>`. */
  counter: number;
  /** Replies to drop (the allocate is handled, the caller sees a timeout): a lost reply or a stalled agent. */
  loseReplies: number;
  /** Every allocate that committed something new: a duplicate placement shows up here. */
  commits: number;
  /** Preempts refused (nothing released). */
  preemptsRefused: number;
  /** Verbs whose requests are held in flight, unhandled (the caller sees a timeout), until deliverStalled. */
  readonly stall: Set<string>;
  readonly stalled: { verb: string; request: unknown }[];
  /** Resize request id -> the allocation it left (the agent answers a seen resize id with its durable result). */
  readonly resizes: Map<string, Allocation>;
}

export interface FakeAgentsOptions {
  readonly heartbeatMs: number;
  /** Publish a snapshot after every change (default true); the benchmark turns it off and relies on heartbeats. */
  readonly publishOnChange?: boolean;
  /** Delay before answering allocate (to hold requests in flight). */
  readonly allocateDelayMs?: number;
}

export class FakeAgents {
  readonly #nc: NatsConnection | null;
  readonly #js: JetStreamClient | null;
  readonly #opts: FakeAgentsOptions;
  readonly nodes = new Map<string, FakeNode>();
  #sub: Subscription | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Allocates answered, all nodes. */
  allocateCalls = 0;

  /** nc and js null: in process only (`caller()`), no snapshots published. */
  constructor(nc: NatsConnection | null, js: JetStreamClient | null, opts: FakeAgentsOptions) {
    this.#nc = nc;
    this.#js = js;
    this.#opts = opts;
  }

  add(id: string, spec: FakeNodeSpec): void {
    this.nodes.set(id, {
      id,
      spec,
      bootId: `boot-${id}-${Date.now()}`,
      seq: 1,
      cordoned: false,
      down: false,
      memoryCommitted: 0,
      vcpusCommitted: 0,
      byRequest: new Map(),
      fences: new Map(),
      counter: 0,
      loseReplies: 0,
      commits: 0,
      preemptsRefused: 0,
      stall: new Set(),
      stalled: [],
      resizes: new Map(),
    });
  }

  /** Starts serving and publishes every node's first snapshot (awaited: the stream has them all on return). */
  async start(): Promise<void> {
    if (this.#nc === null) return;
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
    return [...(this.nodes.get(id)?.byRequest.values() ?? [])].filter((a) => a.status === 'active' || a.status === 'reserved');
  }

  /**
   * The agents called in process, as the place flow and the reconciler call them: a down node is "no responders", a
   * lost reply a timeout (after the request was handled). Requests and replies pass through the wire schemas.
   */
  caller(): AgentCaller {
    const call = async (nodeId: string, verb: AgentVerb, request: unknown) => {
      const n = this.nodes.get(nodeId);
      if (n === undefined || n.down) return err('unavailable', `no responders on allot.agent.${nodeId}.${verb}`);
      if (n.stall.has(verb)) {
        n.stalled.push({ verb, request: structuredClone(request) });
        return err('timeout', `request to allot.agent.${nodeId}.${verb} timed out`);
      }
      const reply = this.#handle(n, verb, structuredClone(request));
      if (n.loseReplies > 0 && verb === 'allocate') {
        n.loseReplies -= 1;
        return err('timeout', `request to allot.agent.${nodeId}.${verb} timed out`);
      }
      if (!reply.ok) return reply;
      const spec = (AGENT_ENDPOINTS as Record<string, { reply: z.ZodType } | undefined>)[verb];
      return spec === undefined ? reply : validate(spec.reply, reply.value);
    };
    return { call } as unknown as AgentCaller;
  }

  /** Hands the requests held in flight on a node to it now (a late message arriving), and answers what it did with each. */
  deliverStalled(id: string): Result<unknown>[] {
    const n = this.nodes.get(id);
    if (n === undefined) return [];
    const held = n.stalled.splice(0);
    return held.map(({ verb, request }) => this.#handle(n, verb, request));
  }

  async publish(id: string): Promise<void> {
    const n = this.nodes.get(id);
    if (!n || this.#js === null) return;
    await this.#js.publish(usageSubject(id), encode(this.snapshot(n)));
  }

  snapshot(n: FakeNode): UsageSnapshot {
    const ratio = n.spec.cpuOvercommit ?? 1;
    const vcpuCapacity = Math.floor(n.spec.cores * ratio);
    const tenants: UsageSnapshot['tenants'] = {};
    const groups: Record<string, number> = {};
    let count = 0;
    for (const a of n.byRequest.values()) {
      if (a.status !== 'active' && a.status !== 'reserved') continue;
      count += 1;
      const t = (tenants[a.tenantId] ??= { vms: 0, memoryMiB: 0, vcpus: 0 });
      t.vms += 1;
      t.memoryMiB += a.granted.memoryMiB;
      t.vcpus += a.granted.vcpus;
      const g = a.request.group === undefined ? undefined : tenantGroupKey(a.tenantId, a.request.group.name);
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
      memory: {
        resourceType: 'memory',
        unit: 'MiB',
        capacity: n.spec.memoryMiB,
        systemReserve: 0,
        effectiveCapacity: n.spec.memoryMiB,
        committed: n.memoryCommitted,
        used: 0,
        reserved: 0,
        allocationCount: count,
      },
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
      priorities: priorityUsage(n.byRequest.values()),
      heartbeatMs: this.#opts.heartbeatMs,
    };
  }

  #onRequest(msg: Msg): void {
    const parts = msg.subject.split('.');
    const node = this.nodes.get(parts[2] ?? '');
    if (!node || node.down || !msg.reply) return;
    const verb = parts.slice(3).join('.');
    const answer = (r: Result<unknown>) => msg.respond(encode(r));
    const handle = () => {
      const raw = decodeWith((r) => ok(r), msg.data);
      return raw.ok ? this.#handle(node, verb, raw.value) : raw;
    };
    if (verb === 'allocate' && this.#opts.allocateDelayMs) {
      setTimeout(() => answer(handle()), this.#opts.allocateDelayMs);
      return;
    }
    answer(handle());
  }

  #changed(n: FakeNode): void {
    n.seq += 1;
    if (this.#opts.publishOnChange !== false) void this.publish(n.id).catch(() => undefined);
  }

  #handle(n: FakeNode, verb: string, raw: unknown): Result<unknown> {
    switch (verb) {
      case 'allocate': {
        this.allocateCalls += 1;
        const req = validate(AllocationRequestSchema, raw);
        if (!req.ok) return req;
        const fence = validate(FenceSchema, (raw as { fence?: unknown }).fence);
        if (!fence.ok) return fence;
        return this.#allocate(n, req.value, fence.value);
      }
      case 'preempt': {
        const req = validate(PreemptRequestSchema, raw);
        if (!req.ok) return req;
        const { fence, ...request } = req.value.request;
        return this.#preempt(n, request, req.value.victims, fence);
      }
      case 'resize': {
        const req = validate(AgentResizeRequestSchema, raw);
        return req.ok ? this.#resize(n, req.value) : req;
      }
      case 'fence': {
        const req = validate(FenceRequestSchema, raw);
        if (!req.ok) return req;
        const recorded = this.#recordFence(n, req.value.requestId, req.value.fence);
        return ok({ allocation: n.byRequest.get(req.value.requestId) ?? null, fence: recorded });
      }
      case 'release': {
        const req = validate(ReleaseRequestSchema, raw);
        if (!req.ok) return req;
        const a =
          req.value.allocationRequestId !== undefined
            ? n.byRequest.get(req.value.allocationRequestId)
            : [...n.byRequest.values()].find((x) => x.id === req.value.allocationId);
        if (a === undefined) return { ok: false, error: errorOf('not_found', `no allocation on ${n.id}`) };
        const recorded = n.fences.get(a.requestId) ?? 0;
        if (req.value.fence !== undefined && recorded > req.value.fence)
          return err('conflict', `request ${a.requestId} was driven at fence ${recorded} since`, { reason: 'fenced', fence: recorded });
        if (a.status === 'active' || a.status === 'reserved') {
          a.status = 'released';
          n.memoryCommitted -= a.granted.memoryMiB;
          n.vcpusCommitted -= a.granted.vcpus;
          this.#changed(n);
        }
        return { ok: true, value: a };
      }
      case 'activate': {
        const req = validate(AgentActivateRequestSchema, raw);
        if (!req.ok) return req;
        const a = [...n.byRequest.values()].find((x) => x.id === req.value.allocationId);
        if (a === undefined) return err('not_found', `no allocation ${req.value.allocationId} on ${n.id}`);
        if (a.status === 'reserved') {
          const { expiresAt: _expiresAt, ...rest } = a;
          const active: Allocation = { ...rest, status: 'active' };
          n.byRequest.set(a.requestId, active);
          this.#changed(n);
          return ok(active);
        }
        return a.status === 'active' ? ok(a) : err('conflict', `allocation ${a.id} is ${a.status}`, { status: a.status });
      }
      case 'allocations': {
        const req = validate(AllocationsRequestSchema, raw);
        if (!req.ok) return req;
        const { status, tenantId, requestId, limit, after } = req.value;
        const counterOf = (a: Allocation) => Number(a.id.slice(a.id.lastIndexOf(':') + 1));
        const matching = [...n.byRequest.values()]
          .filter((a) =>
            status === 'all' ? true : status === 'live' ? a.status === 'active' || a.status === 'reserved' : a.status === status,
          )
          .filter((a) => (tenantId === undefined || a.tenantId === tenantId) && (requestId === undefined || a.requestId === requestId))
          .filter((a) => after === undefined || counterOf(a) > after)
          .sort((x, y) => counterOf(x) - counterOf(y));
        const page = matching.slice(0, limit);
        const last = page.at(-1);
        return ok({
          allocations: page,
          truncated: matching.length > limit,
          ...(matching.length > limit && last !== undefined ? { next: counterOf(last) } : {}),
        });
      }
      case 'cordon':
      case 'uncordon': {
        const req = validate(AgentCordonRequestSchema, raw);
        if (!req.ok) return req;
        n.cordoned = verb === 'cordon';
        this.#changed(n);
        const h: HostHealth = { nodeId: n.id, health: { status: 'healthy' }, cordoned: n.cordoned, recoveryMs: 0, startedAt: 0 };
        return { ok: true, value: h };
      }
      case 'usage':
        return { ok: true, value: this.snapshot(n) };
      case 'limits.get':
        return ok(this.#limits(n));
      case 'limits.update': {
        const req = validate(AgentLimitsUpdateRequestSchema, raw);
        return req.ok ? this.#updateLimits(n, req.value) : req;
      }
      default:
        return { ok: false, error: errorOf('not_found', `fake agent has no verb ${verb}`) };
    }
  }

  /** A fake node's limits: no system reserve, memory not overcommitted, cpu overcommitted by the spec's ratio. */
  #limits(n: FakeNode): HostLimits {
    return {
      memory: { capacity: n.spec.memoryMiB, systemReserve: 0, overcommitRatio: 1 },
      cpu: { capacity: n.spec.cores, systemReserve: 0, overcommitRatio: n.spec.cpuOvercommit ?? 1 },
    };
  }

  /** Capacities and the cpu ratio only (the fake has no reserve nor soft and hard limits); a shrink below committed needs force. */
  #updateLimits(n: FakeNode, r: AgentLimitsUpdateRequest): Result<HostLimits> {
    const named = [...Object.keys(r.memory ?? {}).map((k) => `memory.${k}`), ...Object.keys(r.cpu ?? {}).map((k) => `cpu.${k}`)];
    const unsupported = named.find((f) => f !== 'memory.capacity' && f !== 'cpu.capacity' && f !== 'cpu.overcommitRatio');
    if (unsupported !== undefined)
      return err('invalid_request', `${unsupported}: the fake agent patches capacities and the cpu ratio only`, { field: unsupported });
    const spec: FakeNodeSpec = {
      ...n.spec,
      memoryMiB: r.memory?.capacity ?? n.spec.memoryMiB,
      cores: r.cpu?.capacity ?? n.spec.cores,
      cpuOvercommit: r.cpu?.overcommitRatio ?? n.spec.cpuOvercommit ?? 1,
    };
    const vcpuCapacity = Math.floor(spec.cores * (spec.cpuOvercommit ?? 1));
    if (!r.force && spec.memoryMiB < n.memoryCommitted)
      return err('conflict', `memory: ${n.memoryCommitted} MiB committed exceeds the new effective capacity ${spec.memoryMiB}`, {
        resourceType: 'memory',
        committed: n.memoryCommitted,
        effectiveCapacity: spec.memoryMiB,
      });
    if (!r.force && vcpuCapacity < n.vcpusCommitted)
      return err('conflict', `cpu: ${n.vcpusCommitted} vCPUs committed exceeds the new effective capacity ${vcpuCapacity}`, {
        resourceType: 'cpu',
        committed: n.vcpusCommitted,
        effectiveCapacity: vcpuCapacity,
      });
    n.spec = spec;
    this.#changed(n);
    return ok(this.#limits(n));
  }

  #recordFence(n: FakeNode, requestId: string, fence: number): number {
    const recorded = Math.max(n.fences.get(requestId) ?? 0, fence);
    n.fences.set(requestId, recorded);
    return recorded;
  }

  #allocate(n: FakeNode, r: AllocationRequest, fence: number | undefined): Result<Allocation> {
    const held = n.byRequest.get(r.requestId);
    if (held !== undefined) {
      if (fence !== undefined) this.#recordFence(n, r.requestId, fence);
      return { ok: true, value: held };
    }
    const recorded = n.fences.get(r.requestId) ?? 0;
    if (fence !== undefined && fence <= recorded)
      return err('conflict', `request ${r.requestId} was driven at fence ${recorded}: this allocate (fence ${fence}) is stale`, {
        reason: 'fenced',
        fence: recorded,
      });
    const refused = this.#refusal(n, r);
    if (refused !== null) {
      if (fence !== undefined) this.#recordFence(n, r.requestId, fence);
      return { ok: false, error: refused };
    }
    n.memoryCommitted += r.resources.memoryMiB;
    n.vcpusCommitted += r.resources.vcpus;
    n.commits += 1;
    n.counter += 1;
    if (fence !== undefined) this.#recordFence(n, r.requestId, fence);
    const now = Date.now();
    const a: Allocation = {
      id: `${n.id}:${n.counter}`,
      requestId: r.requestId,
      tenantId: r.tenantId,
      nodeId: n.id,
      request: r,
      granted: { memoryMiB: r.resources.memoryMiB, vcpus: r.resources.vcpus },
      cpu: null,
      status: r.reservation === undefined ? 'active' : 'reserved',
      priority: r.priority,
      createdAt: now,
      updatedAt: now,
      ...(r.reservation === undefined ? {} : { expiresAt: now + r.reservation.ttlMs }),
      ...(fence === undefined ? {} : { fence }),
    };
    n.byRequest.set(r.requestId, a);
    this.#changed(n);
    return { ok: true, value: a };
  }

  /**
   * The agent's resize of an active allocation, all or nothing, idempotent by the resize's request id, and fenced: refused
   * (`conflict`, reason `fenced`) when the allocation's request id was fenced above the resize's fence since.
   */
  #resize(n: FakeNode, r: AgentResizeRequest): Result<Allocation> {
    const seen = n.resizes.get(r.requestId);
    if (seen !== undefined) return ok(seen);
    const a = [...n.byRequest.values()].find((x) => x.id === r.allocationId);
    if (a === undefined) return err('not_found', `no allocation ${r.allocationId} on ${n.id}`, { allocationId: r.allocationId });
    if (a.status !== 'active') return err('conflict', `allocation ${a.id} is ${a.status}`, { reason: 'not_active', status: a.status });
    const recorded = n.fences.get(a.requestId) ?? 0;
    if (r.fence !== undefined && recorded > r.fence)
      return err('conflict', `request id ${a.requestId} was fenced at ${recorded} since; a resize at fence ${r.fence} is stale`, {
        allocationId: a.id,
        reason: 'fenced',
        fence: recorded,
      });
    const memory = r.resources.memoryMiB - a.granted.memoryMiB;
    const vcpus = r.resources.vcpus - a.granted.vcpus;
    if (n.memoryCommitted + memory > n.spec.memoryMiB || n.vcpusCommitted + vcpus > Math.floor(n.spec.cores * (n.spec.cpuOvercommit ?? 1)))
      return err('insufficient_capacity', `no room on ${n.id} to resize ${a.id}`, { resourceType: memory > 0 ? 'memory' : 'cpu' });
    n.memoryCommitted += memory;
    n.vcpusCommitted += vcpus;
    const resized: Allocation = { ...a, granted: { ...r.resources }, updatedAt: Date.now() };
    n.byRequest.set(a.requestId, resized);
    n.resizes.set(r.requestId, resized);
    this.#changed(n);
    return ok(resized);
  }

  /**
   * The agent's preempt: every victim live here and at least PREEMPTION_PRIORITY_GAP below the request, and the request
   * fitting once they are gone; then both at once, else nothing changes. Idempotent by request id; fenced like allocate.
   */
  #preempt(
    n: FakeNode,
    r: AllocationRequest,
    victimIds: readonly string[],
    fence: number | undefined,
  ): Result<{ allocation: Allocation; victims: Allocation[] }> {
    const live = [...n.byRequest.values()];
    const held = n.byRequest.get(r.requestId);
    if (held !== undefined) {
      if (fence !== undefined) this.#recordFence(n, r.requestId, fence);
      return ok({ allocation: held, victims: live.filter((a) => victimIds.includes(a.id)) });
    }
    const recorded = n.fences.get(r.requestId) ?? 0;
    if (fence !== undefined && fence <= recorded)
      return err('conflict', `request ${r.requestId} was driven at fence ${recorded}: this preempt (fence ${fence}) is stale`, {
        reason: 'fenced',
        fence: recorded,
      });
    const victims: Allocation[] = [];
    let refusal: AllotError | null = null;
    for (const id of victimIds) {
      const v = live.find((a) => a.id === id);
      if (v === undefined)
        refusal ??= errorOf('not_found', `no allocation ${id} on ${n.id}`, { reason: 'victim_unknown', allocationId: id });
      else if (v.status !== 'active' && v.status !== 'reserved')
        refusal ??= errorOf('conflict', `victim ${id} is ${v.status}`, { reason: 'victim_gone', allocationId: id });
      else if (v.priority > r.priority - PREEMPTION_PRIORITY_GAP)
        refusal ??= errorOf('conflict', `victim ${id} has priority ${v.priority}`, { reason: 'victim_priority', allocationId: id });
      else victims.push(v);
    }
    if (refusal === null) {
      const freedMemory = victims.reduce((s, v) => s + v.granted.memoryMiB, 0);
      const freedVcpus = victims.reduce((s, v) => s + v.granted.vcpus, 0);
      n.memoryCommitted -= freedMemory;
      n.vcpusCommitted -= freedVcpus;
      refusal = this.#refusal(n, r);
      n.memoryCommitted += freedMemory;
      n.vcpusCommitted += freedVcpus;
    }
    if (refusal !== null) {
      if (fence !== undefined) this.#recordFence(n, r.requestId, fence);
      n.preemptsRefused += 1;
      return { ok: false, error: refusal };
    }
    for (const v of victims) {
      v.status = 'released';
      n.memoryCommitted -= v.granted.memoryMiB;
      n.vcpusCommitted -= v.granted.vcpus;
    }
    const allocation = this.#allocate(n, r, fence);
    return allocation.ok ? ok({ allocation: allocation.value, victims }) : allocation;
  }

  /** Expires a reservation now (as the agent does at its expiresAt): it stays retained as released. */
  expire(nodeId: string, requestId: string): void {
    const n = this.nodes.get(nodeId);
    const a = n?.byRequest.get(requestId);
    if (n === undefined || a === undefined || a.status !== 'reserved') return;
    a.status = 'released';
    n.memoryCommitted -= a.granted.memoryMiB;
    n.vcpusCommitted -= a.granted.vcpus;
    this.#changed(n);
  }

  #refusal(n: FakeNode, r: AllocationRequest): AllotError | null {
    if (n.cordoned) return errorOf('unavailable', `node ${n.id} is cordoned`, { nodeId: n.id, cordoned: true });
    const vcpuCapacity = Math.floor(n.spec.cores * (n.spec.cpuOvercommit ?? 1));
    if (n.memoryCommitted + r.resources.memoryMiB > n.spec.memoryMiB) {
      return errorOf(
        'insufficient_capacity',
        `memory: ${r.resources.memoryMiB} MiB requested, ${n.spec.memoryMiB - n.memoryCommitted} free`,
        { resourceType: 'memory' },
      );
    }
    if (n.vcpusCommitted + r.resources.vcpus > vcpuCapacity) {
      return errorOf('insufficient_capacity', `cpu: ${r.resources.vcpus} vCPUs requested, ${vcpuCapacity - n.vcpusCommitted} free`, {
        resourceType: 'cpu',
      });
    }
    return null;
  }
}

/** A coordinator's place-protocol parts over a shared MemoryBucket and in-process fake agents (no NATS). */
export interface InProcessCoordinator {
  readonly store: IntentStore;
  readonly quotas: QuotaService;
  readonly flow: PlaceFlow;
  readonly reconciler: Reconciler;
  readonly view: ClusterView;
  /** The view brought up to date with every fake node's snapshot (a usage feed with no delay). */
  refresh(): void;
  place(req: PlaceRequestInput): Promise<Result<PlaceReply>>;
}

export interface InProcessCluster {
  readonly bucket: MemoryBucket;
  readonly agents: FakeAgents;
  /** The one clock every part reads: wall and monotonic move together unless a test steps `wallOffset`. */
  readonly clock: { wall(): number; monotonic(): number; advance(ms: number): void; wallOffset: number };
  coordinator(
    id: string,
    overrides?: { bucket?: Bucket; place?: Partial<PlaceConfig>; reconcile?: Partial<ReconcileConfig> },
  ): Promise<InProcessCoordinator>;
}

/** Fake nodes and a bucket shared by the coordinators made with `coordinator(id)`. */
export function inProcessCluster(nodes: Record<string, FakeNodeSpec>): InProcessCluster {
  let t = 1_700_000_000_000;
  const clock = {
    wallOffset: 0,
    wall: () => t + clock.wallOffset,
    monotonic: () => t,
    advance: (ms: number) => void (t += ms),
  };
  const bucket = new MemoryBucket({ now: () => t });
  const agents = new FakeAgents(null, null, { heartbeatMs: 1_000 });
  for (const [id, spec] of Object.entries(nodes)) agents.add(id, spec);
  const logger = pino({ level: 'silent' });
  return {
    bucket,
    agents,
    clock,
    async coordinator(id, overrides = {}) {
      const store = new IntentStore(overrides.bucket ?? bucket, { coordinatorId: id, clock, finishedTtlMs: 7 * 24 * 3_600_000 });
      const quotas = new QuotaService(store, logger);
      await quotas.start();
      const view = new ClusterView({ lostAfterMs: 60_000, clock });
      const caller = agents.caller();
      const flow = new PlaceFlow({
        coordinatorId: id,
        view,
        store,
        quotas,
        agents: caller,
        config: PlaceConfigSchema.parse({ ...overrides.place }),
        logger,
        clock,
        random: () => 0.5,
      });
      const reconciler = new Reconciler({
        store,
        agents: caller,
        config: ReconcileConfigSchema.parse({ pendingOlderThanMs: 60_000, ...overrides.reconcile }),
        logger,
        clock,
      });
      const refresh = () => {
        for (const n of agents.nodes.values()) if (!n.down) view.apply(agents.snapshot(n));
      };
      refresh();
      return {
        store,
        quotas,
        flow,
        reconciler,
        view,
        refresh,
        place: (req) => {
          refresh();
          return flow.place(PlaceRequestSchema.parse(req));
        },
      };
    },
  };
}

/**
 * What moves need (moves/move.ts) from an in-process coordinator: its store, its place flow on a view brought up to
 * date first (as a usage feed would have), and the fake agents. `holdMs` and any other deps as the test chooses.
 */
export function inProcessMoveDeps(
  cluster: InProcessCluster,
  c: InProcessCoordinator,
  deps: Pick<MoveDeps, 'holdMs'> & Partial<MoveDeps>,
): MoveDeps {
  return {
    store: c.store,
    flow: { place: (req, move) => (c.refresh(), c.flow.place(req, move)) },
    agents: cluster.agents.caller(),
    knowsNode: (n) => cluster.agents.nodes.has(n),
    agentTimeoutMs: 100,
    ...deps,
  };
}

/**
 * The move tests' setting: nodes a, b and c (8 GiB, 8 cores each) under coordinator c1, tenant t limited to 3 VMs (so
 * a VM counted twice shows), moves held 10 minutes. `place` puts one of t's 1 GiB, 1-vCPU VMs on the named node; `live`
 * lists a node's allocations as `requestId:status`; `usage` is t's counted usage.
 */
export async function threeNodeMoves() {
  const cluster = inProcessCluster({
    a: { memoryMiB: 8192, cores: 8 },
    b: { memoryMiB: 8192, cores: 8 },
    c: { memoryMiB: 8192, cores: 8 },
  });
  const c = await cluster.coordinator('c1', { place: { timeoutRetries: 0 } });
  unwrap(await c.quotas.set(TenantQuotaSchema.parse({ tenantId: 't', maxVms: 3 })));
  const deps = inProcessMoveDeps(cluster, c, { holdMs: 600_000 });
  const place = (requestId: string, nodeId: string) =>
    c.place({
      request: { requestId, tenantId: 't', resources: { memoryMiB: 1024, vcpus: 1 } },
      placement: { strategy: 'manual', nodeId },
    });
  const usage = async () => unwrap(await c.store.usage('t'))?.value.usage;
  const live = (nodeId: string) => cluster.agents.live(nodeId).map((a) => `${a.requestId}:${a.status}`);
  return { cluster, c, deps, place, usage, live };
}
