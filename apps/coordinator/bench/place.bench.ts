/*
 * End-to-end place throughput and latency: a real nats-server, one coordinator (in this process), N simulated agents in
 * this process (one wildcard subscription, in-memory ledgers, snapshots on heartbeats) or, for `realN`, N real agent
 * processes. Pipelined twice: every place of one tenant, and places spread over 1,000 tenants (either way the counting
 * writes queued meanwhile share one batch: group commit across tenants). Also measures, alone and in the same run, the
 * client with the agents (no coordinator) and the KV writes a place does (kv-alone.ts: the counting batch of intent +
 * usage record, alone and grouped over 100 tenants, and the single-key `placed` compare-and-set, which a place
 * writes after its answer). Prints figures beside their bounds and the load average; asserts nothing.
 *   node apps/coordinator/bench/place.bench.ts [nodeCounts=3,100,1000,real3] [sequential=300] [pipelined=5000]
 * BENCH_REPLICAS=3: a 3-server cluster and every stream and bucket with 3 replicas (default: one server, 1 replica).
 * BENCH_COORDINATORS=2: two coordinators (in this process, or each its own with BENCH_COORDINATOR=process).
 */
import { decide, type ClusterIndex } from '@allot/placement';
import { PlaceRequestSchema } from '@allot/protocol';
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { inFlight, quantile } from '../../../test/harness/bench.ts';
import {
  cleanupAll,
  COORDINATOR_MAIN,
  isLogMsg,
  spawnProcess,
  startAgent,
  startNatsCluster,
  startNatsServer,
  tempDir,
} from '../../../test/harness/index.ts';
import { ensureStreams } from '@allot/nats';
import { jetstreamManager } from '../src/nats-deps.ts';
import { connectTo, ensureTestStreams, startFakeAgents, startTestCoordinator } from '../src/testing/cluster.ts';
import { GROUP_TENANTS, measureKvAlone } from './kv-alone.ts';

const [countsArg, seqArg, pipeArg] = process.argv.slice(2);
// A count prefixed `real` (real3) runs that many real agent processes (apps/agent, simulated hosts) instead of fakes.
const counts = (countsArg ?? '3,100,1000,real3').split(',');
const SEQUENTIAL = Number(seqArg ?? 300);
const PIPELINED = Number(pipeArg ?? 5000);
const WINDOW = 256;
/** Tenants of the many-tenants run (each place names tenant i % TENANTS). */
const TENANTS = 1_000;
const OWN_PROCESS = process.env['BENCH_COORDINATOR'] === 'process';
const COORDINATORS = Number(process.env['BENCH_COORDINATORS'] ?? 1);
const REPLICAS = Number(process.env['BENCH_REPLICAS'] ?? 1);

// Everyone connects to the first server; with 3 replicas the streams' leaders may be on any of them.
const server =
  REPLICAS === 1
    ? await startNatsServer()
    : await startNatsCluster(REPLICAS).then(async (c) => (await c.metaLeader(), { url: c.urls[0] as string }));
try {
  for (const spec of counts) {
    const real = spec.startsWith('real');
    const n = Number(real ? spec.slice(4) : spec);
    const prefix = real ? `r${n}` : `n${n}`;
    const client = await connectTo(server.url, 'bench-client');
    if (REPLICAS === 1) await ensureTestStreams(client);
    else {
      const ensured = await ensureStreams(await jetstreamManager(client), { replicas: REPLICAS });
      if (!ensured.ok) throw new Error(ensured.error.message);
    }
    const nodes: Record<string, { memoryMiB: number; cores: number }> = {};
    for (let i = 0; i < n; i++) nodes[`${prefix}-${i}`] = { memoryMiB: 1 << 22, cores: 4096 };
    let stopAgents: () => Promise<void>;
    if (real) {
      // 2048 cores so the simulated CPU use (40% of a core per vCPU) stays below the unhealthy mark for the whole run.
      const handles = await Promise.all(
        Object.keys(nodes).map(async (nodeId) =>
          startAgent({
            natsUrl: server.url,
            nodeId,
            stateDir: await tempDir('bench-agent'),
            host: { cores: 2048, memoryMiB: 1 << 20 },
            env: { ALLOT_HEARTBEAT_MS: '1000' },
          }),
        ),
      );
      stopAgents = async () => void (await Promise.all(handles.map((h) => h.stop())));
    } else {
      const agentNc = await connectTo(server.url, 'bench-agents');
      const agents = await startFakeAgents(agentNc, nodes, { heartbeatMs: 1_000, publishOnChange: false });
      await agents.start();
      stopAgents = async () => {
        agents.stop();
        await agentNc.close();
      };
    }
    const coordinatorConfig = {
      coordinatorId: `bench-${prefix}`,
      replicas: REPLICAS,
      liveness: { lostAfterMs: 600_000, suspectAfterMs: 600_000 },
    };
    // BENCH_COORDINATOR=process runs the coordinator as its own process (src/main.ts), as deployed: it then does not
    // share an event loop with the client and the fake agents. Default: in this process. BENCH_COORDINATORS=N runs N
    // of them (one queue group: NATS spreads the requests, so they write the same tenants' usage records).
    let inProcess: Awaited<ReturnType<typeof startTestCoordinator>> | undefined;
    const stops: (() => Promise<void>)[] = [];
    for (let k = 0; k < COORDINATORS; k++) {
      const config = { ...coordinatorConfig, coordinatorId: `${coordinatorConfig.coordinatorId}-${k}` };
      if (OWN_PROCESS) {
        const file = join(await tempDir('bench-coordinator'), 'c.json');
        await writeFile(file, JSON.stringify({ ...config, nats: { servers: [server.url] }, logLevel: 'info' }));
        const child = spawnProcess({
          name: `bench coordinator ${k}`,
          script: COORDINATOR_MAIN,
          args: ['--config', file],
          env: { ALLOT_LOG_FORMAT: 'json' },
        });
        await child.waitForLine(isLogMsg('coordinator ready'), 60_000);
        stops.push(async () => void (await child.stop()));
      } else {
        const c = await startTestCoordinator(server.url, config);
        inProcess ??= c;
        stops.push(async () => {
          await c.coordinator.stop();
          await c.nc.close();
        });
      }
    }
    const stopCoordinator = async () => void (await Promise.all(stops.map((stop) => stop())));
    const nc = await connectTo(server.url, 'bench-hop');
    const { requestTyped } = await import('@allot/nats');
    const { schedSubject, PlaceReplySchema, agentSubject } = await import('@allot/protocol');
    const mk = (id: string, tenantId = 'bench') => ({
      request: { requestId: id, tenantId, resources: { memoryMiB: 16, vcpus: 1 } },
      placement: { strategy: 'spread' },
    });

    // Two-hop bare round trip: client -> "coordinator" -> "agent" with no logic, small payloads. A real agent answers
    // `health` (its `usage` carries per-core figures: large for the 2048-core hosts used here); the fakes `usage`.
    const hop1 = client.subscribe('bench.hop1', {
      callback: (_e, m) =>
        void nc
          .request(agentSubject(`${prefix}-0`, real ? 'health' : 'usage'), new Uint8Array(0), { timeout: 5_000 })
          .then((r) => m.respond(r.data)),
    });
    await client.flush();
    const bare: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      const t0 = performance.now();
      await client.request('bench.hop1', new Uint8Array(64), { timeout: 5_000 });
      bare.push(performance.now() - t0);
    }
    hop1.unsubscribe();

    // Warm-up: the first places compile the coordinator's hot path; steady-state latency is what is measured.
    for (let i = 0; i < 200; i++)
      await requestTyped(client, schedSubject('place', 'bench'), mk(`w-${prefix}-${i}`), PlaceReplySchema, { timeoutMs: 10_000 });
    const seq: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      const t0 = performance.now();
      const r = await requestTyped(client, schedSubject('place', 'bench'), mk(`s-${prefix}-${i}`), PlaceReplySchema, { timeoutMs: 10_000 });
      if (!r.ok) throw new Error(r.error.message);
      seq.push(performance.now() - t0);
    }

    const pipelined = async (label: string, tenantOf: (i: number) => string) => {
      let failed = 0;
      const { ms } = await inFlight(PIPELINED, WINDOW, async (i) => {
        const tenantId = tenantOf(i);
        const r = await requestTyped(client, schedSubject('place', tenantId), mk(`${label}-${prefix}-${i}`, tenantId), PlaceReplySchema, {
          timeoutMs: 30_000,
        });
        if (!r.ok) failed += 1;
      });
      return { count: PIPELINED, window: WINDOW, perSecond: Math.round(PIPELINED / (ms / 1000)), failed };
    };
    const oneTenant = await pipelined('p1', () => 'bench');
    const manyTenants = await pipelined('pm', (i) => `t${i % TENANTS}`);

    // The bench's own parts alone, same run: the client and the fake agents (allocate straight to the agents, no
    // coordinator, same window), and the KV writes of a place (the counting batch; the `placed` compare-and-set).
    const { AllocationSchema } = await import('@allot/core');
    const pipelinedRate = async (count: number, one: (i: number) => Promise<unknown>) =>
      Math.round(count / ((await inFlight(count, WINDOW, one)).ms / 1000));
    const agentsAlone = await pipelinedRate(PIPELINED, (i) =>
      requestTyped(client, agentSubject(`${prefix}-${i % n}`, 'allocate'), mk(`a-${prefix}-${i}`).request, AllocationSchema, {
        timeoutMs: 30_000,
      }),
    );
    // 16 two-key batches in flight: what one batch per place would cost (the coordinator sends at most 4, grouped).
    const kv = await measureKvAlone(client, {
      tag: prefix,
      replicas: REPLICAS,
      count: Math.min(PIPELINED, 2_000),
      batchWindow: 16,
      casWindow: WINDOW,
    });

    // Decision time alone: @allot/placement over the coordinator's own index.
    const decider = inProcess ?? (await startTestCoordinator(server.url, { ...coordinatorConfig, coordinatorId: 'bench-decider' }));
    const index: ClusterIndex = decider.coordinator.view.index;
    const req = PlaceRequestSchema.parse(mk('decide'));
    const d0 = performance.now();
    const DECISIONS = 2000;
    for (let i = 0; i < DECISIONS; i++) decide(index, req.request, req.placement, { random: Math.random });
    const decideUs = ((performance.now() - d0) * 1000) / DECISIONS;

    seq.sort((a, b) => a - b);
    bare.sort((a, b) => a - b);
    // A place is at least two request/reply hops (client -> coordinator -> agent), each costing what one hop of the
    // "client and fake agents" figure costs, plus its KV writes; on shared cores the costs add up. The counting batch
    // carries every place queued meanwhile, one tenant or many (a stream handles its batches in turn): per place a
    // share of a grouped batch (measured with 100 tenants), plus the `placed` write (half of a create+CAS pair).
    const hops = 2 / agentsAlone;
    const groupShare = kv.groupBatchP50Ms / 1000 / GROUP_TENANTS;
    const boundOneTenant = Math.round(1 / (hops + 1 / (2 * kv.casPerSecond) + groupShare));
    const boundManyTenants = boundOneTenant;
    // Sequentially a place waits for the two hops and its counting batch (intent + usage record, one atomic batch);
    // the `placed` write is after the answer. Its bound: the bare two-hop plus one counting batch measured alone.
    const seqP50 = quantile(seq, 0.5);
    const bareP50 = quantile(bare, 0.5);
    const seqBoundMs = bareP50 + kv.batchP50Ms;
    const [load1 = 0, load5 = 0] = loadavg();
    console.log(
      JSON.stringify({
        nodes: n,
        replicas: REPLICAS,
        coordinator: OWN_PROCESS ? 'own process' : 'bench process',
        coordinators: COORDINATORS,
        agents: real ? 'real processes' : 'in-process fakes',
        sequential: {
          count: SEQUENTIAL,
          p50Ms: +seqP50.toFixed(3),
          p99Ms: +quantile(seq, 0.99).toFixed(3),
          vsBareTwoHop: +(seqP50 / bareP50).toFixed(2),
          boundMs: +seqBoundMs.toFixed(3),
          boundVsBareTwoHop: +(seqBoundMs / bareP50).toFixed(2),
        },
        bareTwoHop: { p50Ms: +quantile(bare, 0.5).toFixed(3), p99Ms: +quantile(bare, 0.99).toFixed(3) },
        pipelinedOneTenant: oneTenant,
        pipelinedManyTenants: { ...manyTenants, tenants: TENANTS },
        alone: { clientAndFakeAgentsPerSecond: agentsAlone, kv },
        decisionUs: +decideUs.toFixed(1),
        bound: { oneTenantPerSecond: boundOneTenant, manyTenantsPerSecond: boundManyTenants },
        loadAverage: { oneMinute: +load1.toFixed(1), fiveMinutes: +load5.toFixed(1), cpus: cpus().length },
      }),
    );
    console.log(
      `  ${spec} nodes: pipelined ${oneTenant.perSecond} places/s one tenant (bound ${boundOneTenant}/s), ${manyTenants.perSecond}/s over ${TENANTS} tenants (bound ${boundManyTenants}/s: ` +
        `a counting batch alone ${kv.batchP50Ms} ms, ${kv.batchesPerSecond} batches/s, grouped over ${GROUP_TENANTS} tenants ${kv.groupBatchP50Ms} ms); goal 5,000 with 100 agents; ` +
        `sequential p50 ${seqP50.toFixed(2)} ms = ${(seqP50 / bareP50).toFixed(2)}x the two-hop bare round trip (goal <= 1.5x; bound: ` +
        `two-hop + one counting batch alone = ${seqBoundMs.toFixed(2)} ms = ${(seqBoundMs / bareP50).toFixed(2)}x)`,
    );
    if (decider !== inProcess) {
      await decider.coordinator.stop();
      await decider.nc.close();
    }
    await stopCoordinator();
    await nc.close();
    await stopAgents();
    // Next size starts from empty streams and buckets so the views do not mix.
    const jsm = await jetstreamManager(client);
    for (const s of ['ALLOT_USAGE', 'KV_allot_placements']) await jsm.streams.purge(s).catch(() => undefined);
    await client.close();
  }
} finally {
  await cleanupAll();
}
