/*
 * End-to-end place throughput and latency: a real nats-server, one coordinator (in this process), N simulated agents in
 * this process (one wildcard subscription, in-memory ledgers, snapshots on heartbeats) or, for `realN`, N real agent
 * processes. Also measures the client with the agents alone (no coordinator) and the two KV writes of a place alone,
 * with the same window. Prints figures; asserts nothing.
 *   node apps/coordinator/bench/place.bench.ts [nodeCounts=3,100,1000,real3] [sequential=300] [pipelined=5000]
 */
import { place, type ClusterIndex } from '@allot/placement';
import { KV_PLACEMENTS, PlaceRequestSchema } from '@allot/core';
import { Kvm } from '@nats-io/kv';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inFlight, quantile } from '../../../test/harness/bench.ts';
import { cleanupAll, COORDINATOR_MAIN, isLogMsg, spawnProcess, startAgent, startNatsServer, tempDir } from '../../../test/harness/index.ts';
import { jetstreamManager } from '../src/nats-deps.ts';
import { connectTo, ensureTestStreams, startFakeAgents, startTestCoordinator } from '../src/testing/cluster.ts';

const [countsArg, seqArg, pipeArg] = process.argv.slice(2);
// A count prefixed `real` (real3) runs that many real agent processes (apps/agent, simulated hosts) instead of fakes.
const counts = (countsArg ?? '3,100,1000,real3').split(',');
const SEQUENTIAL = Number(seqArg ?? 300);
const PIPELINED = Number(pipeArg ?? 5000);
const WINDOW = 256;
const OWN_PROCESS = process.env['BENCH_COORDINATOR'] === 'process';

const server = await startNatsServer();
try {
  for (const spec of counts) {
    const real = spec.startsWith('real');
    const n = Number(real ? spec.slice(4) : spec);
    const prefix = real ? `r${n}` : `n${n}`;
    const client = await connectTo(server.url, 'bench-client');
    await ensureTestStreams(client);
    const nodes: Record<string, { memoryMiB: number; cores: number }> = {};
    for (let i = 0; i < n; i++) nodes[`${prefix}-${i}`] = { memoryMiB: 1 << 22, cores: 4096 };
    let stopAgents: () => Promise<void>;
    if (real) {
      // 2048 cores so the simulated CPU use (40% of a core per vCPU) stays below the unhealthy mark for the whole run.
      const handles = await Promise.all(
        Object.keys(nodes).map(async (nodeId) => startAgent({ natsUrl: server.url, nodeId, stateDir: await tempDir('bench-agent'), host: { cores: 2048, memoryMiB: 1 << 20 }, env: { ALLOT_HEARTBEAT_MS: '1000' } })),
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
    const coordinatorConfig = { coordinatorId: `bench-${prefix}`, liveness: { lostAfterMs: 600_000, suspectAfterMs: 600_000 } };
    // BENCH_COORDINATOR=process runs the coordinator as its own process (src/main.ts), as deployed: it then does not
    // share an event loop with the client and the fake agents. Default: in this process.
    let inProcess: Awaited<ReturnType<typeof startTestCoordinator>> | undefined;
    let stopCoordinator: () => Promise<void>;
    if (OWN_PROCESS) {
      const file = join(await tempDir('bench-coordinator'), 'c.json');
      await writeFile(file, JSON.stringify({ ...coordinatorConfig, nats: { servers: [server.url] }, logLevel: 'info' }));
      const child = spawnProcess({ name: 'bench coordinator', script: COORDINATOR_MAIN, args: ['--config', file], env: { ALLOT_LOG_FORMAT: 'json' } });
      await child.waitForLine(isLogMsg('coordinator ready'), 60_000);
      stopCoordinator = async () => void (await child.stop());
    } else {
      inProcess = await startTestCoordinator(server.url, coordinatorConfig);
      const c = inProcess;
      stopCoordinator = async () => {
        await c.coordinator.stop();
        await c.nc.close();
      };
    }
    const nc = await connectTo(server.url, 'bench-hop');
    const { requestTyped } = await import('@allot/nats');
    const { schedSubject, PlaceReplySchema, agentSubject } = await import('@allot/core');
    const mk = (id: string) => ({ request: { requestId: id, tenantId: 'bench', resources: { memoryMiB: 16, vcpus: 1 } }, placement: { strategy: 'spread' } });

    // Two-hop bare round trip: client -> "coordinator" -> "agent" with no logic, small payloads. A real agent answers
    // `health` (its `usage` carries per-core figures: large for the 2048-core hosts used here); the fakes `usage`.
    const hop1 = client.subscribe('bench.hop1', { callback: (_e, m) => void nc.request(agentSubject(`${prefix}-0`, real ? 'health' : 'usage'), new Uint8Array(0), { timeout: 5_000 }).then((r) => m.respond(r.data)) });
    await client.flush();
    const bare: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      const t0 = performance.now();
      await client.request('bench.hop1', new Uint8Array(64), { timeout: 5_000 });
      bare.push(performance.now() - t0);
    }
    hop1.unsubscribe();

    // Warm-up: the first places compile the coordinator's hot path; steady-state latency is what is measured.
    for (let i = 0; i < 200; i++) await requestTyped(client, schedSubject('place', 'bench'), mk(`w-${prefix}-${i}`), PlaceReplySchema, { timeoutMs: 10_000 });
    const seq: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      const t0 = performance.now();
      const r = await requestTyped(client, schedSubject('place', 'bench'), mk(`s-${prefix}-${i}`), PlaceReplySchema, { timeoutMs: 10_000 });
      if (!r.ok) throw new Error(r.error.message);
      seq.push(performance.now() - t0);
    }

    let failed = 0;
    const { ms } = await inFlight(PIPELINED, WINDOW, async (i) => {
      const r = await requestTyped(client, schedSubject('place', 'bench'), mk(`p-${prefix}-${i}`), PlaceReplySchema, { timeoutMs: 30_000 });
      if (!r.ok) failed += 1;
    });
    const seconds = ms / 1000;

    // The bench's own parts alone, same window: the client and the fake agents (allocate straight to the agents, no
    // coordinator), and the two JetStream KV writes a place makes (create, then CAS), so a slow figure can be placed.
    const { AllocationSchema } = await import('@allot/core');
    const pipelinedRate = async (count: number, one: (i: number) => Promise<unknown>) => Math.round(count / ((await inFlight(count, WINDOW, one)).ms / 1000));
    const agentsAlone = await pipelinedRate(PIPELINED, (i) => requestTyped(client, agentSubject(`${prefix}-${i % n}`, 'allocate'), mk(`a-${prefix}-${i}`).request, AllocationSchema, { timeoutMs: 30_000 }));
    const kv = await new Kvm(client).open(KV_PLACEMENTS);
    const kvAlone = await pipelinedRate(PIPELINED, async (i) => {
      const value = new Uint8Array(400);
      const rev = await kv.create(`kv-${prefix}-${i}`, value);
      await kv.update(`kv-${prefix}-${i}`, value, rev);
    });

    // Decision time alone: @allot/placement over the coordinator's own index.
    const decider = inProcess ?? (await startTestCoordinator(server.url, { ...coordinatorConfig, coordinatorId: 'bench-decider' }));
    const index: ClusterIndex = decider.coordinator.view.index;
    const req = PlaceRequestSchema.parse(mk('decide'));
    const d0 = performance.now();
    const DECISIONS = 2000;
    for (let i = 0; i < DECISIONS; i++) place(index, req.request, req.placement, { random: Math.random });
    const decideUs = ((performance.now() - d0) * 1000) / DECISIONS;

    seq.sort((a, b) => a - b);
    bare.sort((a, b) => a - b);
    console.log(
      JSON.stringify({
        nodes: n,
        coordinator: OWN_PROCESS ? 'own process' : 'bench process',
        agents: real ? 'real processes' : 'in-process fakes',
        sequential: { count: SEQUENTIAL, p50Ms: +quantile(seq, 0.5).toFixed(3), p99Ms: +quantile(seq, 0.99).toFixed(3) },
        bareTwoHop: { p50Ms: +quantile(bare, 0.5).toFixed(3), p99Ms: +quantile(bare, 0.99).toFixed(3) },
        pipelined: { count: PIPELINED, window: WINDOW, perSecond: Math.round(PIPELINED / seconds), failed },
        alone: { clientAndFakeAgentsPerSecond: agentsAlone, kvCreateThenCasPerSecond: kvAlone },
        decisionUs: +decideUs.toFixed(1),
        // A place is at least two request/reply hops (client -> coordinator -> agent), each costing what one hop of
        // the "client and fake agents" figure costs, plus the KV create and CAS; on shared cores the costs add up.
        boundPerSecond: Math.round(1 / (2 / agentsAlone + 1 / kvAlone)),
      }),
    );
    console.log(
      `  ${spec} nodes: ${Math.round(PIPELINED / seconds)} places/s pipelined; bound from the parts measured alone ${Math.round(1 / (2 / agentsAlone + 1 / kvAlone))}/s (goal 5,000 with 100 agents); ` +
        `sequential p50 ${quantile(seq, 0.5).toFixed(2)} ms = ${(quantile(seq, 0.5) / quantile(bare, 0.5)).toFixed(2)}x the two-hop bare round trip (goal <= 2x)`,
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
