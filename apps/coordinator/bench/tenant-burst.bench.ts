/*
 * One tenant placing thousands at once (issue 16): N places of ONE tenant sent all at once (N in flight) through two
 * coordinators (one queue group, so NATS spreads the requests and both write the tenant's usage record), against 100
 * fake agents on a real nats-server (one server, file storage, R1). Three runs, each printed beside the others:
 * - capped: the tenant's maxVms below N. Prints admitted / quota_exceeded / other answers and checks, at every answer
 *   and at the end, that the tenant's live allocations on the agents never exceed maxVms, and that its usage record
 *   equals them once settled (printed as `exceeded: 0`, `usageEqualsLive: true`; never asserted: benchmarks print);
 * - one tenant, quota ample: places/s of one tenant's burst;
 * - N tenants (one place each, no quota), same window: the same burst without a shared usage record.
 *   node apps/coordinator/bench/tenant-burst.bench.ts [places=1000] [cap=600] [coordinators=2]
 */
import { TenantQuotaSchema } from '@allot/core';
import { PlaceReplySchema, schedSubject } from '@allot/protocol';
import { requestTyped } from '@allot/nats';
import { cpus, loadavg } from 'node:os';
import { inFlight, quantile } from '../../../test/harness/bench.ts';
import { cleanupAll, startNatsServer } from '../../../test/harness/index.ts';
import { connectTo, ensureTestStreams, startFakeAgents, startTestCoordinator } from '../src/testing/cluster.ts';

const [placesArg, capArg, coordinatorsArg] = process.argv.slice(2);
const PLACES = Number(placesArg ?? 1_000);
const CAP = Number(capArg ?? 600);
const COORDINATORS = Number(coordinatorsArg ?? 2);
const NODES = 100;

const server = await startNatsServer();
try {
  const client = await connectTo(server.url, 'burst-client');
  await ensureTestStreams(client);
  const nodes: Record<string, { memoryMiB: number; cores: number }> = {};
  for (let i = 0; i < NODES; i++) nodes[`b-${i}`] = { memoryMiB: 1 << 22, cores: 4096 };
  const agentNc = await connectTo(server.url, 'burst-agents');
  const agents = await startFakeAgents(agentNc, nodes, { heartbeatMs: 1_000, publishOnChange: false });
  await agents.start();
  const coordinators: Awaited<ReturnType<typeof startTestCoordinator>>[] = [];
  for (let k = 0; k < COORDINATORS; k++)
    coordinators.push(
      await startTestCoordinator(server.url, { coordinatorId: `burst-${k}`, liveness: { lostAfterMs: 600_000, suspectAfterMs: 600_000 } }),
    );
  const store = (coordinators[0] as Awaited<ReturnType<typeof startTestCoordinator>>).coordinator.store;
  const setQuota = async (tenantId: string, maxVms: number) => {
    const set = await store.setQuota(TenantQuotaSchema.parse({ tenantId, maxVms }));
    if (!set.ok) throw new Error(set.error.message);
  };
  const liveOf = (tenantId: string) =>
    Object.keys(nodes).reduce((sum, id) => sum + agents.live(id).filter((a) => a.tenantId === tenantId).length, 0);
  const mk = (id: string, tenantId: string) => ({
    request: { requestId: id, tenantId, resources: { memoryMiB: 16, vcpus: 1 } },
    placement: { strategy: 'spread' },
  });
  // The views fill from the agents' first snapshots; warm the hot path on a tenant of its own.
  await new Promise((r) => setTimeout(r, 1_500));
  for (let i = 0; i < 200; i++)
    await requestTyped(client, schedSubject('place', 'warm'), mk(`warm-${i}`, 'warm'), PlaceReplySchema, { timeoutMs: 10_000 });

  const burst = async (label: string, tenantOf: (i: number) => string, cap?: number) => {
    const answers: Record<string, number> = {};
    const ms: number[] = [];
    let maxLive = 0;
    const { ms: total } = await inFlight(PLACES, PLACES, async (i) => {
      const tenantId = tenantOf(i);
      const t0 = performance.now();
      const r = await requestTyped(client, schedSubject('place', tenantId), mk(`${label}-${i}`, tenantId), PlaceReplySchema, {
        timeoutMs: 60_000,
      });
      ms.push(performance.now() - t0);
      const code = r.ok ? 'ok' : r.error.code;
      answers[code] = (answers[code] ?? 0) + 1;
      if (cap !== undefined) maxLive = Math.max(maxLive, liveOf(tenantOf(0)));
    });
    ms.sort((a, b) => a - b);
    const out: Record<string, unknown> = {
      run: label,
      places: PLACES,
      inFlight: PLACES,
      coordinators: COORDINATORS,
      perSecond: Math.round(PLACES / (total / 1000)),
      totalMs: Math.round(total),
      p50Ms: +quantile(ms, 0.5).toFixed(1),
      p99Ms: +quantile(ms, 0.99).toFixed(1),
      answers,
    };
    if (cap !== undefined) {
      await Promise.all(coordinators.map((c) => c.coordinator.flow.settled()));
      const tenantId = tenantOf(0);
      const usage = await store.usage(tenantId);
      const live = liveOf(tenantId);
      const recorded = usage.ok ? (usage.value?.value.usage.vms ?? 0) : -1;
      Object.assign(out, {
        cap,
        maxLiveSeen: Math.max(maxLive, live),
        exceeded: Math.max(0, maxLive - cap),
        live,
        usageVms: recorded,
        usageEqualsLive: recorded === live,
      });
    }
    return out;
  };

  await setQuota('capped', CAP);
  const capped = await burst('capped', () => 'capped', CAP);
  await setQuota('one', PLACES * 10);
  const one = await burst('one', () => 'one');
  const many = await burst('many', (i) => `m${i}`);
  const [load1 = 0] = loadavg();
  for (const r of [capped, one, many]) console.log(JSON.stringify({ ...r, loadAverage: +load1.toFixed(1), cpus: cpus().length }));
  console.log(
    `  one tenant, ${PLACES} at once over ${COORDINATORS} coordinators: ${String(one['perSecond'])} places/s (p50 ${String(one['p50Ms'])} ms); ` +
      `${PLACES} tenants at once: ${String(many['perSecond'])}/s; capped at ${CAP}: ${JSON.stringify(capped['answers'])}, ` +
      `most live seen ${String(capped['maxLiveSeen'])} (exceeded by ${String(capped['exceeded'])}), usage record ${String(capped['usageVms'])} = live ${String(capped['live'])}`,
  );
  for (const c of coordinators) {
    await c.coordinator.stop();
    await c.nc.close();
  }
  agents.stop();
  await agentNc.close();
  await client.close();
} finally {
  await cleanupAll();
}
