import { CLUSTER_EVENT_NODE, COORDINATOR_QUEUE, COORDINATOR_SERVICE_NAME, err, MAX_AUDIT_LISTED, MAX_DRAIN_LISTED, ok, SCHED_ENDPOINTS, schedSubject, type AllotEvent, type Allocation, type Result, type SchedVerb } from '@allot/core';
import { endpoint, serveService, type EndpointSpec, type ServedService } from '@allot/nats';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { AgentClient } from './agents.ts';
import { forEachAllocationPage } from './allocation-pages.ts';
import type { ClusterManager } from './cluster-manager.ts';
import { PlacementMetrics } from './exported-metrics.ts';
import type { NatsConnection } from './nats-deps.ts';
import type { PlaceFlow } from './place-flow.ts';
import type { QuotaService } from './quotas.ts';
import type { Sweep } from './sweep.ts';
import type { ClusterView } from './view.ts';

export interface EndpointDeps {
  readonly manager: ClusterManager;
  readonly flow: PlaceFlow;
  readonly view: ClusterView;
  readonly quotas: QuotaService;
  readonly agents: AgentClient;
  /** Serves `audit` (read only); absent: audit answers unavailable. */
  readonly sweep?: Sweep;
  /** Publishes a cluster-level audit event (a place refused by the coordinator itself); fire and forget. */
  readonly publishEvent?: (event: AllotEvent, msgId: string) => void;
}

/** Refusals a scheduler reads in the event feed: nothing fit, a quota, a rate limit. */
const AUDITED_REFUSALS = new Set(['insufficient_capacity', 'quota_exceeded', 'rate_limited']);

type Handler<V extends SchedVerb> = (request: z.output<(typeof SCHED_ENDPOINTS)[V]['request']>) => Promise<Result<z.output<(typeof SCHED_ENDPOINTS)[V]['reply']>>>;

function sched<V extends SchedVerb>(verb: V, handler: Handler<V>): EndpointSpec {
  return endpoint({ name: verb.replace('.', '-'), subject: schedSubject(verb), requestSchema: SCHED_ENDPOINTS[verb].request, handler: (r) => handler(r as never) });
}

/** The scheduler endpoints, allot.sched.<verb>, one handler each; validation is done by serveService on decode. */
export function schedulerEndpoints(d: EndpointDeps): EndpointSpec[] {
  // Prometheus counters and latency (no-ops without the SDK), recorded where the reply is known.
  const exported = new PlacementMetrics();
  return [
    sched('place', async (r) => {
      const out = await exported.place(() => d.manager.place(r));
      if (!out.ok && AUDITED_REFUSALS.has(out.error.code) && d.publishEvent !== undefined) {
        const req = r.request;
        // One event per request id and reason: a scheduler retrying the same refused request is not counted again.
        d.publishEvent({ kind: 'refused', nodeId: CLUSTER_EVENT_NODE, at: Date.now(), requestId: req.requestId, tenantId: req.tenantId, resources: req.resources, error: out.error }, `cluster-refused-${req.requestId}-${out.error.code}`);
      }
      return out;
    }),
    sched('release', async (r) => {
      const out = await d.flow.release(r);
      exported.release(out);
      if (out.ok) d.manager.metrics.releases += 1;
      return out;
    }),
    sched('activate', (r) => d.manager.activateReservation(r.allocationId, r.requestId)),
    sched('check', async (r) => d.flow.check(r)),
    sched('usage', async () => ok(d.manager.clusterUsage())),
    sched('efficiency', async () => ok(d.manager.efficiency())),
    sched('nodes', async (r) => ok({ nodes: d.view.nodes({ ...(r.liveness === undefined ? {} : { liveness: r.liveness }), ...(r.labels === undefined ? {} : { labels: r.labels }) }) })),
    sched('node', async (r) => {
      const v = d.view.get(r.nodeId);
      return v === undefined ? err('not_found', `node ${r.nodeId} has not reported`, { nodeId: r.nodeId }) : ok(v);
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
      const walked = await forEachAllocationPage(d.agents, r.nodeId, { status: 'live' }, (page) => void remaining.push(...page.slice(0, MAX_DRAIN_LISTED - remaining.length)));
      if (!walked.ok) return walked;
      return ok({ nodeId: r.nodeId, cordoned: c.value.cordoned, remaining, remainingCount: walked.value.count });
    }),
    sched('audit', async () => {
      if (d.sweep === undefined) return err('unavailable', 'this coordinator runs no sweep');
      const report = await d.sweep.audit();
      if (!report.ok) return report;
      const { discrepancies, nodesSwept, nodesFailed } = report.value;
      return ok({ discrepancies: discrepancies.slice(0, MAX_AUDIT_LISTED), total: discrepancies.length, nodesSwept, nodesFailed: nodesFailed.map((n) => ({ nodeId: n.nodeId, error: n.error.slice(0, 1024) })) });
    }),
  ];
}

/** Forwards a cordon to the node's agent (which journals it) and shows it in the local view at once. */
async function cordon(d: EndpointDeps, nodeId: string, on: boolean, requestId: string, reason: string | undefined) {
  const r = await d.agents.call(nodeId, on ? 'cordon' : 'uncordon', reason === undefined ? { requestId } : { requestId, reason }, { requestId });
  if (r.ok) d.view.setCordoned(nodeId, r.value.cordoned);
  return r;
}

/** Serves the scheduler endpoints as the NATS service allot-coordinator in the queue group allot-coordinators. */
export function serveScheduler(nc: NatsConnection, d: EndpointDeps, opts: { coordinatorId: string; version: string; logger: Logger }): Promise<Result<ServedService>> {
  return serveService(nc, {
    name: COORDINATOR_SERVICE_NAME,
    version: opts.version,
    description: 'allot coordinator: placement, quotas and the cluster view',
    metadata: { coordinatorId: opts.coordinatorId },
    queue: COORDINATOR_QUEUE,
    endpoints: schedulerEndpoints(d),
    logger: opts.logger,
  });
}
