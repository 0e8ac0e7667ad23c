import {
  CLUSTER_EVENT_NODE,
  COORDINATOR_QUEUE,
  COORDINATOR_SERVICE_NAME,
  isTenantVerb,
  MAX_AUDIT_LISTED,
  MAX_DRAIN_LISTED,
  READ_SUBJECT_PREFIX,
  SCHED_ENDPOINTS,
  schedSubject,
  tenantOfBody,
  tenantOfSubject,
  tenantSubject,
  type AllotEvent,
  type ClusterLimitsUpdateRequest,
  type PlaceRequest,
  type SchedVerb,
} from '@allot/protocol';
import { err, ok, TenantIdSchema, type Allocation, type LimitsUpdate, type Result, type TenantQuota } from '@allot/core';
import { endpoint, serveService, type EndpointSpec, type ServedService } from '@allot/nats';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { AgentClient } from './agents.ts';
import { withCoreList } from './core-list.ts';
import { forEachAllocationPage } from './allocation-pages.ts';
import type { ClusterManager } from './cluster-manager.ts';
import { decommissionNode, recommissionNode, type DecommissionDeps } from './decommission.ts';
import type { NatsConnection } from './nats-deps.ts';
import type { NodeTaints } from './node-taints.ts';
import type { QuotaService } from './quotas.ts';
import { evacuateNode, movesInFlight } from './moves/evacuate.ts';
import { abortMove, confirmMove, moveAllocation, type MoveDeps } from './moves/move.ts';
import { placeBatch, type PlaceBatchDeps } from './place-batch.ts';
import { resizeAllocation, type ResizeDeps } from './resize.ts';
import type { Sweep } from './sweep.ts';
import type { ClusterView } from './view.ts';

export interface EndpointDeps {
  /** The door of the verbs the ResourceManager contract answers (place, release, activate, check, usage, allocations...). */
  readonly manager: ClusterManager;
  readonly view: ClusterView;
  readonly quotas: QuotaService;
  readonly agents: AgentClient;
  /** Serves `audit` (read only); absent: audit answers unavailable. */
  readonly sweep?: Sweep;
  /** Publishes a cluster-level audit event (a place refused by the coordinator itself); fire and forget. */
  readonly publishEvent?: (event: AllotEvent, msgId: string) => void;
  /** Priority and preemption right of a tenant whose quota names none; default priority 0, no preemption. */
  readonly tenantDefaults?: TenantDefaults;
  /** Serves node.decommission and node.recommission (decommission.ts); absent: they answer unavailable. */
  readonly decommission?: DecommissionDeps;
  /** Serves node.taint and node.untaint (node-taints.ts); absent: they answer unavailable. */
  readonly taints?: NodeTaints;
  /** Serves resize (resize.ts); absent: resize answers unavailable. */
  readonly resize?: ResizeDeps;
  /** Serves move, move.confirm, move.abort and evacuate (moves/*.ts); absent: they answer unavailable. */
  readonly moves?: MoveDeps;
  /** Serves place.batch (place-batch.ts); absent: it answers unavailable. */
  readonly batch?: PlaceBatchDeps;
}

/** What a tenant without those fields in its quota gets (config `tenantDefaults`). */
export interface TenantDefaults {
  readonly priority: number;
  readonly allowPreemption: boolean;
}

const DENY_BY_DEFAULT: TenantDefaults = { priority: 0, allowPreemption: false };

/**
 * A place or check as the tenant's quota allows it: the priority is the quota's (or the default), whatever the request
 * names, preemption is allowed only when asked for and the quota (or the default) grants it, and the quota's bound on
 * CPU overcommit joins the request's (the lower applies; placement filters on it and the agent refuses past it).
 */
export function withTenantRights(r: PlaceRequest, quota: TenantQuota | undefined, defaults: TenantDefaults): PlaceRequest {
  const priority = quota?.priority ?? defaults.priority;
  const mayPreempt = quota?.allowPreemption ?? defaults.allowPreemption;
  const bounds = [r.request.cpu.maxOvercommit, quota?.maxCpuOvercommit].filter((b) => b !== undefined);
  const cpu = bounds.length === 0 ? r.request.cpu : { ...r.request.cpu, maxOvercommit: Math.min(...bounds) };
  return {
    request: { ...r.request, priority, cpu },
    placement: { ...r.placement, allowPreemption: r.placement.allowPreemption && mayPreempt },
  };
}

/** Refusals a scheduler reads in the event feed: nothing fit, a quota, a rate limit. */
const AUDITED_REFUSALS = new Set(['insufficient_capacity', 'quota_exceeded', 'rate_limited']);

type Handler<V extends SchedVerb> = (
  request: z.output<(typeof SCHED_ENDPOINTS)[V]['request']>,
  tenantId: string,
) => Promise<Result<z.output<(typeof SCHED_ENDPOINTS)[V]['reply']>>>;

/**
 * One coordinator endpoint. Tenant verbs are served on allot.sched.*.<verb>: the tenant is the subject's token (NATS
 * permissions decide who may publish there), and a body that names another tenant is refused before the handler runs.
 */
function sched<V extends SchedVerb>(verb: V, handler: Handler<V>): EndpointSpec {
  const tenantVerb = isTenantVerb(verb);
  return endpoint({
    name: verb.replace('.', '-'),
    subject: tenantVerb ? tenantSubject('*', verb) : schedSubject(verb as never),
    requestSchema: SCHED_ENDPOINTS[verb].request,
    handler: async (r, ctx) => {
      if (!tenantVerb) return handler(r as never, '');
      const tenantId = tenantOfSubject(ctx.subject);
      if (tenantId === undefined || !TenantIdSchema.safeParse(tenantId).success)
        return err('invalid_request', `subject ${ctx.subject} names no valid tenant`, { field: 'subject' });
      const named = tenantOfBody(verb, r);
      if (named !== undefined && named !== tenantId) {
        return err('invalid_request', `the request names tenant ${named} on tenant ${tenantId}'s subject`, {
          field: verb === 'place' || verb === 'check' ? 'request.tenantId' : 'tenantId',
          subjectTenant: tenantId,
        });
      }
      return handler(r as never, tenantId);
    },
  });
}

/** The scheduler endpoints, allot.sched.<verb>, one handler each; validation is done by serveService on decode. */
export function schedulerEndpoints(d: EndpointDeps): EndpointSpec[] {
  const defaults = d.tenantDefaults ?? DENY_BY_DEFAULT;
  return [
    sched('place', async (asked, tenantId) => {
      const r = withTenantRights(asked, d.quotas.quotaOf(tenantId), defaults);
      // A request with a reservation is held (reserve), any other placed (allocate): one contract method each.
      const out = await (r.request.reservation === undefined
        ? d.manager.allocate(r.request, r.placement)
        : d.manager.reserve(r.request, r.placement));
      if (!out.ok && AUDITED_REFUSALS.has(out.error.code) && d.publishEvent !== undefined) {
        const req = r.request;
        // One event per request id and reason: a scheduler retrying the same refused request is not counted again.
        d.publishEvent(
          {
            kind: 'refused',
            nodeId: CLUSTER_EVENT_NODE,
            at: Date.now(),
            requestId: req.requestId,
            tenantId: req.tenantId,
            resources: req.resources,
            error: out.error,
          },
          `cluster-refused-${req.requestId}-${out.error.code}`,
        );
      }
      return out;
    }),
    // Each member as the tenant's quota allows it (priority, CPU overcommit bound), as a place is.
    sched('place.batch', async (r, tenantId) => {
      if (d.batch === undefined) return err('unavailable', 'this coordinator cannot place batches');
      const quota = d.quotas.quotaOf(tenantId);
      const members = r.members.map((request) => withTenantRights({ request, placement: r.placement }, quota, defaults).request);
      const out = await placeBatch(d.batch, { ...r, members });
      if (!out.ok && AUDITED_REFUSALS.has(out.error.code) && d.publishEvent !== undefined) {
        // One event per batch and reason, as a place's: the batch id and what the whole batch asked.
        const resources = { memoryMiB: 0, vcpus: 0 };
        for (const m of members) {
          resources.memoryMiB += m.resources.memoryMiB;
          resources.vcpus += m.resources.vcpus;
        }
        d.publishEvent(
          { kind: 'refused', nodeId: CLUSTER_EVENT_NODE, at: Date.now(), requestId: r.batchId, tenantId, resources, error: out.error },
          `cluster-refused-batch-${r.batchId}-${out.error.code}`,
        );
      }
      return out;
    }),
    // The owning tenant is the subject's: a placement of another tenant is not_found.
    sched('release', (r, tenantId) => d.manager.release({ requestId: r.requestId, allocationRequestId: r.placementRequestId, tenantId })),
    sched('activate', async (r, tenantId) => {
      const owned = await ownedBy(d, r.allocationId, tenantId);
      return owned.ok ? d.manager.activateReservation(r.allocationId, r.requestId) : owned;
    }),
    sched('resize', (r, tenantId) =>
      d.resize === undefined
        ? Promise.resolve(err('unavailable', 'this coordinator cannot resize'))
        : resizeAllocation(d.resize, r, tenantId),
    ),
    sched('move', (r, tenantId) => (d.moves === undefined ? cannotMove() : moveAllocation(d.moves, r, tenantId))),
    sched('move.confirm', (r, tenantId) => (d.moves === undefined ? cannotMove() : confirmMove(d.moves, r, tenantId))),
    sched('move.abort', (r, tenantId) => (d.moves === undefined ? cannotMove() : abortMove(d.moves, r, tenantId))),
    sched('evacuate', (r) => (d.moves === undefined ? cannotMove() : evacuateNode(d.moves, r))),
    sched('moves', (r) => (d.moves === undefined ? cannotMove() : movesInFlight(d.moves, r))),
    sched('check', async (asked, tenantId) => {
      const r = withTenantRights(asked, d.quotas.quotaOf(tenantId), defaults);
      const a = await d.manager.checkAvailability(r.request, r.placement);
      if (!a.ok) return a;
      const { fits, candidates, rejected, message, preemption } = a.value;
      return ok({ fits, candidates, rejected, message, ...(preemption === undefined ? {} : { preemption }) });
    }),
    sched('usage', () => d.manager.getUsage()),
    sched('efficiency', async () => ok(d.manager.efficiency())),
    sched('health', () => d.manager.healthCheck()),
    sched('nodes', async (r) =>
      ok({
        nodes: d.view.nodes({
          ...(r.liveness === undefined ? {} : { liveness: r.liveness }),
          ...(r.state === undefined ? {} : { state: r.state }),
          ...(r.labels === undefined ? {} : { labels: r.labels }),
        }),
      }),
    ),
    sched('node', async (r) => {
      const v = await withCoreList(d.view, d.agents, r.nodeId);
      if (v !== undefined) return ok(v);
      const gone = d.decommission?.nodeStates.decommissioned(r.nodeId);
      if (gone !== undefined)
        return err(
          'not_found',
          `node ${r.nodeId} was decommissioned and nothing of it remains ("allot node recommission ${r.nodeId}" takes it back)`,
          { nodeId: r.nodeId, state: 'decommissioned', decommissionedAt: gone.at },
        );
      return err('not_found', `node ${r.nodeId} has not reported`, { nodeId: r.nodeId });
    }),
    sched('quota.get', (r) => d.quotas.get(r.tenantId)),
    sched('quota.set', (r) => d.quotas.set(r.quota)),
    sched('quota.import', async (r) => {
      const report = await d.quotas.import(r.documents);
      return report.ok ? ok(report.value as unknown as Record<string, unknown>) : report;
    }),
    sched('quota.recount', (r) => d.quotas.recount(r.tenantId)),
    sched('cordon', (r) => cordon(d, r.nodeId, true, r.requestId, r.reason)),
    sched('uncordon', (r) => cordon(d, r.nodeId, false, r.requestId, r.reason)),
    sched('drain', async (r) => {
      // Drain = cordon (journaled by the agent), then what remains there, for the operator to move or release.
      const c = await cordon(d, r.nodeId, true, r.requestId, r.reason ?? 'drain');
      if (!c.ok) return c;
      // Page by page (finding 11): the reply lists the first MAX_DRAIN_LISTED and counts them all.
      const remaining: Allocation[] = [];
      const walked = await forEachAllocationPage(
        d.agents,
        r.nodeId,
        { status: 'live' },
        (page) => void remaining.push(...page.slice(0, MAX_DRAIN_LISTED - remaining.length)),
      );
      if (!walked.ok) return walked;
      return ok({ nodeId: r.nodeId, cordoned: c.value.cordoned, remaining, remainingCount: walked.value.count });
    }),
    sched('limits.get', (r) => d.manager.getLimits({ node: r.nodeId })),
    sched('allocations', (r) => d.manager.getAllocations(r)),
    sched('limits.update', (r) => d.manager.updateLimits(limitsPatchOf(r), { node: r.nodeId, force: r.force, requestId: r.requestId })),
    sched('node.decommission', (r) =>
      d.decommission === undefined
        ? Promise.resolve(err('unavailable', 'this coordinator cannot decommission nodes'))
        : decommissionNode(d.decommission, r),
    ),
    sched('node.recommission', (r) =>
      d.decommission === undefined
        ? Promise.resolve(err('unavailable', 'this coordinator cannot recommission nodes'))
        : recommissionNode(d.decommission, r),
    ),
    sched('node.taint', async (r) => {
      if (d.taints === undefined) return err('unavailable', 'this coordinator cannot taint nodes');
      const taints = await d.taints.set(r.nodeId, r.taint, r.requestId);
      return taints.ok ? ok({ nodeId: r.nodeId, taints: [...taints.value] }) : taints;
    }),
    sched('node.untaint', async (r) => {
      if (d.taints === undefined) return err('unavailable', 'this coordinator cannot untaint nodes');
      const taints = await d.taints.remove(r.nodeId, r.key, r.effect, r.requestId);
      return taints.ok ? ok({ nodeId: r.nodeId, taints: [...taints.value] }) : taints;
    }),
    sched('audit', async () => {
      if (d.sweep === undefined) return err('unavailable', 'this coordinator runs no sweep');
      const report = await d.sweep.audit();
      if (!report.ok) return report;
      const { discrepancies, nodesSwept, nodesFailed } = report.value;
      return ok({
        discrepancies: discrepancies.slice(0, MAX_AUDIT_LISTED),
        total: discrepancies.length,
        nodesSwept,
        nodesFailed: nodesFailed.map((n) => ({ nodeId: n.nodeId, error: n.error.slice(0, 1024) })),
      });
    }),
  ];
}

/**
 * Ok when the allocation's node holds it for this tenant. Allocation ids are `<nodeId>:<counter>`: one page of one
 * allocation after counter - 1 is that allocation, in any status. Another tenant's allocation is not_found, as is one
 * the node does not have, so a tenant learns nothing of others'.
 */
async function ownedBy(d: EndpointDeps, allocationId: string, tenantId: string): Promise<Result<void>> {
  const at = allocationId.lastIndexOf(':');
  const nodeId = allocationId.slice(0, Math.max(at, 0));
  const counter = Number(allocationId.slice(at + 1));
  const notFound = err('not_found', `tenant ${tenantId} has no allocation ${allocationId}`, { allocationId, tenantId });
  if (nodeId === '' || !Number.isSafeInteger(counter) || counter < 1) return notFound;
  if (d.view.get(nodeId) === undefined)
    return err(
      'not_found',
      `no node holds ${allocationId}: allocation ids are <nodeId>:<counter> and no node ${JSON.stringify(nodeId)} has reported`,
      { allocationId },
    );
  const page = await d.agents.call(nodeId, 'allocations', { status: 'all', tenantId, after: counter - 1, limit: 1 }, {});
  if (!page.ok) return page;
  return page.value.allocations[0]?.id === allocationId ? ok(undefined) : notFound;
}

function cannotMove(): Promise<Result<never>> {
  return Promise.resolve(err('unavailable', 'this coordinator cannot move allocations'));
}

/** The resource types a limits.update names, without the routing fields. */
function limitsPatchOf(r: ClusterLimitsUpdateRequest): LimitsUpdate {
  return { ...(r.memory === undefined ? {} : { memory: r.memory }), ...(r.cpu === undefined ? {} : { cpu: r.cpu }) };
}

/** Forwards a cordon to the node's agent (which journals it) and shows it in the local view at once. */
async function cordon(d: EndpointDeps, nodeId: string, on: boolean, requestId: string, reason: string | undefined) {
  const r = await d.agents.call(nodeId, on ? 'cordon' : 'uncordon', reason === undefined ? { requestId } : { requestId, reason }, {
    requestId,
  });
  if (r.ok) d.view.setCordoned(nodeId, r.value.cordoned);
  return r;
}

/**
 * Serves the scheduler endpoints as the NATS service allot-coordinator in the queue group allot-coordinators; a
 * read-only coordinator (a view of several sites) serves the read verbs alone.
 */
export function serveScheduler(
  nc: NatsConnection,
  d: EndpointDeps,
  opts: { coordinatorId: string; version: string; logger: Logger; readOnly?: boolean },
): Promise<Result<ServedService>> {
  const all = schedulerEndpoints(d);
  const endpoints = opts.readOnly === true ? all.filter((e) => e.subject.startsWith(`${READ_SUBJECT_PREFIX}.`)) : all;
  return serveService(nc, {
    name: COORDINATOR_SERVICE_NAME,
    version: opts.version,
    description: 'allot coordinator: placement, quotas and the cluster view',
    metadata: { coordinatorId: opts.coordinatorId },
    queue: COORDINATOR_QUEUE,
    endpoints,
    logger: opts.logger,
  });
}
