import { randomUUID } from 'node:crypto';
import {
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
  type Result,
  type ScopeAnswers,
  type Telemetry,
} from '@allot/core';
import {
  PlaceRequestSchema,
  type ClusterAllocationsReply,
  type ClusterCheckReply,
  type ClusterEfficiencyReply,
  type ClusterUsage,
  type HostLimits,
  type PlaceReply,
  type PlaceRequest,
} from '@allot/protocol';
import type { AgentCaller } from './agents.ts';
import { decodeCursor, listAllocationsPage, listingNodes } from './allocation-listing.ts';
import { clusterEfficiency, DEFAULT_REFERENCE, ShapeCounter } from './efficiency.ts';
import { PlaceMetrics } from './metrics.ts';
import type { PlaceFlow } from './place-flow.ts';
import type { ClusterView } from './view.ts';

/**
 * The cluster's answers: allocate and reserve answer the placement (the place verb's reply), getUsage the usage verb's
 * figures with node counts, getAllocations one page of the allocations verb, with its cursor.
 */
export interface ClusterAnswers extends ScopeAnswers {
  readonly placed: PlaceReply;
  readonly usage: ClusterUsage;
  readonly listing: ClusterAllocationsReply;
}

/**
 * What the cluster's getAllocations filters on besides the contract's: one node, nodes by labels, the page's cursor
 * (the `next` of the previous page) and a bound on each agent's answer.
 */
export interface ClusterAllocationFilter extends AllocationFilter {
  readonly nodeId?: string;
  readonly labels?: Record<string, string>;
  readonly cursor?: string;
  readonly timeoutMs?: number;
}

function placeRequestOf(request: AllocationRequestInput, placement: PlacementOptionsInput | undefined): Result<PlaceRequest> {
  return validate(PlaceRequestSchema, placement === undefined ? { request } : { request, placement });
}

/** A page of the allocations verb when the caller names no limit (its wire default). */
const DEFAULT_PAGE = 500;

/**
 * The cluster composite: the ResourceManager contract at cluster scope, and the one door of the scheduler verbs it
 * answers. allocate means place (choose a node, have its agent commit), release goes through the placement intent,
 * checkAvailability is a dry-run place; usage and health are aggregated from the view, allocations listed page by page
 * by the nodes' agents, limits read and patched on the named node through its agent.
 */
export class ClusterManager implements ResourceManager<ClusterAnswers> {
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
   * The place verb: choose a node with the placement options (the caller has applied the tenant's rights) and have its
   * agent commit, timed and counted once; the answer names the node, cpuset, victims and attempts besides the
   * allocation. The protocol is PlaceFlow's, the decision @allot/placement's. A request with a reservation is held.
   */
  async allocate(request: AllocationRequestInput, placement?: PlacementOptionsInput): Promise<Result<PlaceReply>> {
    const req = placeRequestOf(request, placement);
    return req.ok ? this.#place(req.value) : req;
  }

  /** The place verb for a request with a reservation: the agent holds and expires it; placing it is an ordinary place. */
  async reserve(request: AllocationRequestInput, placement?: PlacementOptionsInput): Promise<Result<PlaceReply>> {
    const req = placeRequestOf(request, placement);
    if (!req.ok) return req;
    if (req.value.request.reservation === undefined)
      return err('invalid_request', 'reservation: a reservation needs reservation.ttlMs', { field: 'reservation' });
    return this.#place(req.value);
  }

  async #place(req: PlaceRequest): Promise<Result<PlaceReply>> {
    const t0 = performance.now();
    const r = this.#running ? await this.#placeRunning(req) : err('unavailable', 'the coordinator is stopping');
    this.metrics.recordPlace(performance.now() - t0, r);
    return r;
  }

  #placeRunning(req: PlaceRequest): Promise<Result<PlaceReply>> {
    this.#shapes.record(req.request.resources.memoryMiB, req.request.resources.vcpus);
    return this.#flow.place(req);
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
    const check = await this.#flow.check(req.value);
    if (!check.ok) return check;
    const { fits, candidates, rejected, message, preemption } = check.value;
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
    const where = { candidates, rejected, message, ...(preemption === undefined ? {} : { preemption }) };
    return ok(fits ? { fits, figures, ...where } : { fits, figures, reason: { code: 'insufficient_capacity', message }, ...where });
  }

  /**
   * The usage verb: the view's figures per resource type (what is committed on a lost or decommissioned node still
   * counts, its agent being the authority; only its capacity is out of reach) and the nodes counted by liveness.
   */
  async getUsage(): Promise<Result<ClusterUsage>> {
    return ok(this.#view.usage(this.#now()));
  }

  /**
   * The allocations verb: one page of at most `limit` (default 500) of the allocations of the nodes listingNodes
   * chooses (the named node, else the ready nodes carrying the labels), walked with the cursor of
   * allocation-listing.ts; `next` is the cursor of the next page, `nodesFailed` names the nodes that did not answer.
   */
  async getAllocations(filter: ClusterAllocationFilter = {}): Promise<Result<ClusterAllocationsReply>> {
    const cursor = filter.cursor === undefined ? undefined : decodeCursor(filter.cursor);
    if (cursor !== undefined && !cursor.ok) return cursor;
    const nodes = listingNodes(this.#view, filter);
    if (!nodes.ok) return nodes;
    const page = await listAllocationsPage(
      this.#agents,
      nodes.value,
      {
        status: filter.status ?? 'live',
        ...(filter.tenantId === undefined ? {} : { tenantId: filter.tenantId }),
        ...(filter.requestId === undefined ? {} : { requestId: filter.requestId }),
      },
      {
        limit: filter.limit ?? DEFAULT_PAGE,
        ...(cursor === undefined ? {} : { cursor: cursor.value }),
        ...(filter.timeoutMs === undefined ? {} : { timeoutMs: filter.timeoutMs }),
      },
    );
    if (!page.ok) return page;
    const { allocations, next, nodesFailed } = page.value;
    return ok({ allocations, ...(next === undefined ? {} : { next }), ...(nodesFailed.length === 0 ? {} : { nodesFailed }) });
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

  /** The view's: the worst node health with its reasons, and suspect or lost nodes (served as allot.read.health). */
  async healthCheck(): Promise<Result<Health>> {
    if (!this.#running) return ok({ status: 'stopped' });
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
