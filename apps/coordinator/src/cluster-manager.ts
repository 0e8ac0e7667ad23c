import { randomUUID } from 'node:crypto';
import {
  AllocationRequestSchema,
  err,
  ok,
  validate,
  type Allocation,
  type AllocationFilter,
  type AllocationRequestInput,
  type Availability,
  type Health,
  type LimitsTarget,
  type LimitsUpdate,
  type PlacementOptionsInput,
  type ManagerMetrics,
  type ReleaseTarget,
  type ResourceManager,
  type ResourceType,
  type ResourceUsage,
  type Result,
  type Telemetry,
} from '@allot/core';
import {
  PlaceRequestSchema,
  type ClusterCheckReply,
  type ClusterEfficiencyReply,
  type ClusterUsage,
  type HostLimits,
  type PlaceReply,
  type PlaceRequest,
} from '@allot/protocol';
import type { AgentCaller } from './agents.ts';
import { decodeCursor, listAllocationsPage, listingNodes, type ListingPage } from './allocation-listing.ts';
import { allAllocations } from './allocation-pages.ts';
import { clusterEfficiency, DEFAULT_REFERENCE, ShapeCounter } from './efficiency.ts';
import { PlaceMetrics } from './metrics.ts';
import type { PlaceFlow } from './place-flow.ts';
import type { ClusterView } from './view.ts';

/**
 * The cluster composite: the ResourceManager contract at cluster scope. allocate means place (choose a node, have its
 * agent commit), release goes through the placement intent, checkAvailability is a dry-run place; usage and health are
 * aggregated from the view, allocations listed by the ready nodes' agents, limits read and patched on the named node
 * through its agent.
 */
export class ClusterManager implements ResourceManager {
  readonly name = 'cluster';
  readonly resourceTypes: readonly ResourceType[] = ['memory', 'cpu'];
  /** The one record of places and releases (the composite's metrics and the exported ones). */
  readonly metrics = new PlaceMetrics();
  /** The VM shapes asked for: the most common one is the reference of the cluster's fragmentation figure. */
  readonly #shapes = new ShapeCounter();
  readonly #view: ClusterView;
  readonly #flow: PlaceFlow;
  readonly #agents: AgentCaller;
  readonly #now: () => number;
  #running = false;

  constructor(deps: { view: ClusterView; flow: PlaceFlow; agents: AgentCaller; now: () => number }) {
    this.#view = deps.view;
    this.#flow = deps.flow;
    this.#agents = deps.agents;
    this.#now = deps.now;
  }

  /**
   * The door of the scheduler verbs (the endpoints and the contract methods below both come through here): place with
   * placement options, timed and counted once; the protocol is PlaceFlow's, the decision @allot/placement's.
   */
  async place(req: PlaceRequest): Promise<Result<PlaceReply>> {
    const t0 = performance.now();
    const r = this.#running ? await this.#placeRunning(req) : err('unavailable', 'the coordinator is stopping');
    this.metrics.recordPlace(performance.now() - t0, r);
    return r;
  }

  #placeRunning(req: PlaceRequest): Promise<Result<PlaceReply>> {
    this.#shapes.record(req.request.resources.memoryMiB, req.request.resources.vcpus);
    return this.#flow.place(req);
  }

  async allocate(request: AllocationRequestInput): Promise<Result<Allocation>> {
    const req = validate(PlaceRequestSchema, { request });
    if (!req.ok) return req;
    const r = await this.place(req.value);
    return r.ok ? ok(r.value.allocation) : r;
  }

  /**
   * The release verb: a placement is released by the request id that placed it (`allocationRequestId`), through its
   * intent, counted once. `tenantId` (the scheduler subject's) makes another tenant's placement not_found.
   */
  async release(target: ReleaseTarget & { tenantId?: string }): Promise<Result<Allocation>> {
    if (target.allocationRequestId === undefined)
      return err('invalid_request', 'allocationRequestId: at cluster scope a placement is released by the request id that placed it', {
        field: 'allocationRequestId',
      });
    const r = await this.#flow.release({
      requestId: target.requestId,
      placementRequestId: target.allocationRequestId,
      ...(target.tenantId === undefined ? {} : { tenantId: target.tenantId }),
    });
    this.metrics.recordRelease(r);
    return r;
  }

  /**
   * The check verb, a dry run of a place that changes nothing: with the placement options when given (the caller has
   * applied the tenant's rights), and at cluster scope also where it would go and why not elsewhere. The figures are the
   * cluster's totals: "fits: false" with free above requested means no single node has the room.
   */
  async checkAvailability(
    request: AllocationRequestInput,
    placement?: PlacementOptionsInput,
  ): Promise<Result<Availability & Omit<ClusterCheckReply, 'fits'>>> {
    const req = validate(PlaceRequestSchema, placement === undefined ? { request } : { request, placement });
    if (!req.ok) return req;
    const check = this.#flow.check(req.value);
    if (!check.ok) return check;
    const { fits, candidates, rejected, message } = check.value;
    const u = this.#view.usage(this.#now());
    const figures = {
      memory: {
        requested: req.value.request.resources.memoryMiB,
        free: u.memory.effectiveCapacity - u.memory.committed,
        effectiveCapacity: u.memory.effectiveCapacity,
      },
      cpu: {
        requested: req.value.request.resources.vcpus,
        free: u.cpu.effectiveCapacity - u.cpu.committed,
        effectiveCapacity: u.cpu.effectiveCapacity,
      },
    };
    const where = { candidates, rejected, message };
    return ok(fits ? { fits, figures, ...where } : { fits, figures, reason: { code: 'insufficient_capacity', message }, ...where });
  }

  clusterUsage(): ClusterUsage {
    return this.#view.usage(this.#now());
  }

  async getUsage(): Promise<Result<ResourceUsage[]>> {
    const out: ResourceUsage[] = [];
    for (const r of ['memory', 'cpu'] as const) {
      const u: ResourceUsage = {
        resourceType: r,
        unit: r === 'memory' ? 'MiB' : 'vCPU',
        capacity: 0,
        systemReserve: 0,
        effectiveCapacity: 0,
        committed: 0,
        used: 0,
        reserved: 0,
        allocationCount: 0,
      };
      for (const v of this.#view.index.nodes()) {
        const s = v.snapshot[r];
        // As the usage verb counts (ClusterView.usage): what is committed on a lost or decommissioned node still
        // exists (its agent is the authority); only its capacity is out of reach.
        u.committed += s.committed;
        u.reserved += s.reserved;
        u.allocationCount += s.allocationCount;
        if (v.liveness === 'lost' || v.state === 'decommissioned') continue;
        u.capacity += s.capacity;
        u.systemReserve += s.systemReserve;
        u.effectiveCapacity += s.effectiveCapacity;
        u.used += s.used;
      }
      out.push(u);
    }
    return ok(out);
  }

  /**
   * Fans out to the ready nodes' agents; a node that does not answer is left out (see the view for its figures). Served
   * to operators as allot.op.allocations (`allot allocations`).
   */
  async getAllocations(filter: AllocationFilter = {}): Promise<Result<Allocation[]>> {
    const nodes = this.#view.nodes({ liveness: 'ready' });
    const lists = await Promise.all(
      nodes.map((n) =>
        allAllocations(
          this.#agents,
          n.nodeId,
          {
            status: filter.status ?? 'live',
            ...(filter.tenantId === undefined ? {} : { tenantId: filter.tenantId }),
            ...(filter.requestId === undefined ? {} : { requestId: filter.requestId }),
          },
          { pageSize: 1_000, ...(filter.limit === undefined ? {} : { max: filter.limit }) },
        ),
      ),
    );
    const all: Allocation[] = [];
    for (const l of lists) if (l.ok) all.push(...l.value.allocations);
    return ok(filter.limit === undefined ? all : all.slice(0, filter.limit));
  }

  /**
   * One page of the cluster's allocations (allot.op.allocations): the nodes listingNodes chooses, walked with the
   * cursor of allocation-listing.ts.
   */
  async listAllocations(
    q: AllocationFilter & { nodeId?: string; labels?: Record<string, string>; cursor?: string; limit: number; timeoutMs?: number },
  ): Promise<Result<ListingPage>> {
    const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
    if (cursor !== undefined && !cursor.ok) return cursor;
    const nodes = listingNodes(this.#view, q);
    if (!nodes.ok) return nodes;
    const filter: AllocationFilter = {
      status: q.status ?? 'live',
      ...(q.tenantId === undefined ? {} : { tenantId: q.tenantId }),
      ...(q.requestId === undefined ? {} : { requestId: q.requestId }),
    };
    return listAllocationsPage(this.#agents, nodes.value, filter, {
      limit: q.limit,
      ...(cursor === undefined ? {} : { cursor: cursor.value }),
      ...(q.timeoutMs === undefined ? {} : { timeoutMs: q.timeoutMs }),
    });
  }

  async reserve(request: AllocationRequestInput): Promise<Result<Allocation>> {
    const parsed = validate(AllocationRequestSchema, request);
    if (!parsed.ok) return parsed;
    if (parsed.value.reservation === undefined)
      return err('invalid_request', 'reservation: a reservation needs reservation.ttlMs', { field: 'reservation' });
    // The agent holds and expires the reservation; placing it is an ordinary place.
    return this.allocate(parsed.value);
  }

  /**
   * Activates a reservation on the node that holds it, named by the allocation id (`<nodeId>:<counter>`): the agent
   * checks and journals it, idempotently by request id. A node the view has never heard of is not_found.
   */
  async activateReservation(allocationId: string, requestId: string): Promise<Result<Allocation>> {
    const at = allocationId.lastIndexOf(':');
    const nodeId = at > 0 ? allocationId.slice(0, at) : '';
    if (nodeId === '' || this.#view.get(nodeId) === undefined)
      return err(
        'not_found',
        `no node holds ${allocationId}: allocation ids are <nodeId>:<counter> and no node ${JSON.stringify(nodeId)} has reported`,
        { allocationId },
      );
    return this.#agents.call(nodeId, 'activate', { requestId, allocationId }, { requestId });
  }

  async start(): Promise<Result<void>> {
    this.#running = true;
    return ok(undefined);
  }

  async stop(): Promise<Result<void>> {
    this.#running = false;
    return ok(undefined);
  }

  isRunning(): boolean {
    return this.#running;
  }

  /** The view's: the worst node health with its reasons, and suspect or lost nodes (served as allot.read.health). */
  async healthCheck(): Promise<Result<Health>> {
    if (!this.isRunning()) return ok({ status: 'stopped' });
    return ok(this.#view.health());
  }

  async getMetrics(): Promise<Result<ManagerMetrics>> {
    return ok(this.metrics.snapshot());
  }

  async exportTelemetry(): Promise<Result<Telemetry>> {
    const u = this.#view.usage(this.#now());
    const m = this.metrics.snapshot();
    const t: Telemetry = {
      'cluster.nodes.total': u.nodes.total,
      'cluster.nodes.ready': u.nodes.ready,
      'cluster.nodes.suspect': u.nodes.suspect,
      'cluster.nodes.lost': u.nodes.lost,
      'cluster.nodes.cordoned': u.nodes.cordoned,
      'memory.capacity': u.memory.capacity,
      'memory.effectiveCapacity': u.memory.effectiveCapacity,
      'memory.committed': u.memory.committed,
      'memory.used': u.memory.used,
      'cpu.capacity': u.cpu.capacity,
      'cpu.effectiveCapacity': u.cpu.effectiveCapacity,
      'cpu.committed': u.cpu.committed,
      'cpu.used': u.cpu.used,
      'cluster.allocations': u.allocationCount,
      'place.placed': m.allocations,
      'place.released': m.releases,
      'place.preempted': this.metrics.preemptions,
      'place.latency.p50Ms': m.allocateLatency.p50Ms,
      'place.latency.p99Ms': m.allocateLatency.p99Ms,
    };
    for (const [code, n] of Object.entries(m.refusals)) t[`place.refused.${code}`] = n;
    return ok(t);
  }

  /** Efficiency over the schedulable nodes, against the most common VM shape asked for (see clusterEfficiency). */
  efficiency(): ClusterEfficiencyReply {
    const seen = this.#shapes.mostCommon();
    return clusterEfficiency(this.#view.nodes(), seen ?? DEFAULT_REFERENCE, seen === undefined ? 'default' : 'seen');
  }

  /** The named node's limits, as its agent answers limits.get (served to operators as allot.op.limits.get). */
  async getLimits(options: LimitsTarget = {}): Promise<Result<HostLimits>> {
    const node = this.#limitsNode(options);
    return node.ok ? this.#agents.call(node.value, 'limits.get', {}) : node;
  }

  /**
   * A patch of the named node's limits, sent to its agent as limits.update (memory and cpu are the types it takes; the
   * operator's request id when given, else a fresh one). The agent validates and journals it. Served to operators as
   * allot.op.limits.update (`allot limits set`).
   */
  async updateLimits(
    update: LimitsUpdate,
    options: LimitsTarget & { force?: boolean; requestId?: string } = {},
  ): Promise<Result<HostLimits>> {
    const node = this.#limitsNode(options);
    if (!node.ok) return node;
    const other = Object.keys(update).find((type) => type !== 'memory' && type !== 'cpu');
    if (other !== undefined)
      return err('invalid_request', `${other}: an agent's limits.update takes memory and cpu limits`, { field: other });
    const requestId = options.requestId ?? `limits-${randomUUID()}`;
    return this.#agents.call(node.value, 'limits.update', { requestId, ...update, force: options.force === true }, { requestId });
  }

  #limitsNode(options: LimitsTarget): Result<string> {
    if (options.node === undefined)
      return err('invalid_request', 'node: limits are per node at cluster scope: name the node', { field: 'node' });
    if (this.#view.get(options.node) === undefined)
      return err('not_found', `no node ${JSON.stringify(options.node)} has reported`, { node: options.node });
    return ok(options.node);
  }
}
