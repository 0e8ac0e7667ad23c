/*
 * place.batch throughput: VMs per second placed in batches of 10 and 100 (all or nothing), beside the single place's
 * rate in the same run, on a real nats-server (one server, file storage, 1 replica), one coordinator in this process
 * and N in-process fake agents. Each figure is printed beside its bound from the parts measured alone in the same run:
 * the atomic KV write of a batch (N intents + the tenant's usage record, one atomic batch), the members' allocates
 * sent straight to the agents at once, and the batch decision (decideBatch over the coordinator's own index).
 *   node apps/coordinator/bench/place-batch.bench.ts [nodes=100] [vmsPerRun=2000]
 * Prints; asserts nothing.
 */
import { AllocationSchema } from '@allot/core';
import { requestTyped } from '@allot/nats';
import { decideBatch } from '@allot/placement';
import {
  agentSubject,
  decode,
  encode,
  KV_PLACEMENTS,
  PlaceBatchReplySchema,
  PlaceBatchRequestSchema,
  PlaceReplySchema,
  schedSubject,
  type PlaceBatchReply,
} from '@allot/protocol';
import { ensureKv } from '@allot/nats';
import { cpus, loadavg } from 'node:os';
import { inFlight, quantile } from '../../../test/harness/bench.ts';
import { cleanupAll, startNatsServer } from '../../../test/harness/index.ts';
import { jetstream } from '../src/nats-deps.ts';
import { NatsBucket } from '../src/store/nats-bucket.ts';
import { connectTo, ensureTestStreams, startFakeAgents, startTestCoordinator } from '../src/testing/cluster.ts';

const [nodesArg, vmsArg] = process.argv.slice(2);
const NODES = Number(nodesArg ?? 100);
/** VMs placed per measured run (each batch size and the single place place about this many). */
const VMS = Number(vmsArg ?? 2_000);
const SIZES = [10, 100];

const server = await startNatsServer();
try {
  const client = await connectTo(server.url, 'bench-client');
  await ensureTestStreams(client);
  const nodes: Record<string, { memoryMiB: number; cores: number }> = {};
  for (let i = 0; i < NODES; i++) nodes[`n-${i}`] = { memoryMiB: 1 << 22, cores: 1 << 16 };
  const agentNc = await connectTo(server.url, 'bench-agents');
  const agents = await startFakeAgents(agentNc, nodes, { heartbeatMs: 1_000, publishOnChange: false });
  await agents.start();
  const { coordinator, nc: coordinatorNc } = await startTestCoordinator(server.url, {
    coordinatorId: 'bench-batch',
    liveness: { lostAfterMs: 600_000, suspectAfterMs: 600_000 },
  });

  const member = (id: string) => ({ requestId: id, tenantId: 'bench', resources: { memoryMiB: 16, vcpus: 1 } });
  const batch = (id: string, size: number) => ({
    batchId: id,
    tenantId: 'bench',
    members: Array.from({ length: size }, (_, i) => member(`${id}-${i}`)),
    placement: { strategy: 'spread' },
  });
  const place = async (id: string) => {
    const r = await requestTyped(
      client,
      schedSubject('place', 'bench'),
      { request: member(id), placement: { strategy: 'spread' } },
      PlaceReplySchema,
      {
        timeoutMs: 30_000,
      },
    );
    if (!r.ok) throw new Error(`place ${id}: ${r.error.message}`);
  };
  const lastReply = new Map<number, PlaceBatchReply>();
  const placeBatch = async (id: string, size: number) => {
    const r = await requestTyped(client, schedSubject('place.batch', 'bench'), batch(id, size), PlaceBatchReplySchema, {
      timeoutMs: 60_000,
    });
    if (!r.ok) throw new Error(`batch ${id}: ${r.error.message}`);
    lastReply.set(size, r.value);
  };

  // Warm-up: the hot paths compiled before anything is measured.
  for (let i = 0; i < 100; i++) await place(`w-${i}`);
  for (let i = 0; i < 10; i++) await placeBatch(`wb-${i}`, 10);

  // Single places: one at a time, and 256 in flight (group commit across them).
  const single: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < Math.min(VMS, 500); i++) {
    const s = performance.now();
    await place(`s-${i}`);
    single.push(performance.now() - s);
  }
  const singleSequentialPerSecond = Math.round(single.length / ((performance.now() - t0) / 1000));
  const singlePipelined = await inFlight(VMS, 256, (i) => place(`p-${i}`));
  const singlePipelinedPerSecond = Math.round(VMS / (singlePipelined.ms / 1000));

  // The parts of a batch alone: its atomic KV write, its members' allocates at once, its decision.
  const kv = await ensureKv(jetstream(client), KV_PLACEMENTS, {
    history: 1,
    replicas: 1,
    allowAtomic: true,
    allowMsgTtl: true,
    expiryMarkerTtlMs: 3_600_000,
  });
  if (!kv.ok) throw new Error(kv.error.message);
  const bucket = new NatsBucket(client, kv.value, KV_PLACEMENTS);
  const intent = encode({
    requestId: 'x'.repeat(36),
    tenantId: 'alone',
    hash: 'h'.repeat(64),
    state: 'pending',
    nodeId: 'n-0',
    attempt: 1,
    refusedBy: [],
  });
  const usage = encode({ version: 2, tenantId: 'alone', usage: { vms: 1, vcpus: 1, memoryMiB: 16, vmsPerNode: { 'n-0': 1 } } });

  const results: Record<string, unknown>[] = [];
  for (const size of SIZES) {
    const count = Math.max(1, Math.round(VMS / size));
    const sequential: number[] = [];
    const s0 = performance.now();
    for (let i = 0; i < Math.min(count, 100); i++) {
      const s = performance.now();
      await placeBatch(`b${size}-s-${i}`, size);
      sequential.push(performance.now() - s);
    }
    const sequentialVmsPerSecond = Math.round((sequential.length * size) / ((performance.now() - s0) / 1000));
    const window = Math.max(1, Math.round(256 / size));
    const piped = await inFlight(count, window, (i) => placeBatch(`b${size}-p-${i}`, size));
    const pipelinedVmsPerSecond = Math.round((count * size) / (piped.ms / 1000));

    const kvAlone: number[] = [];
    for (let i = 0; i < 50; i++) {
      const s = performance.now();
      const w = await bucket.write([
        ...Array.from({ length: size }, (_, m) => ({ key: `intent.alone-${size}-${i}-${m}`, value: intent, expectedRevision: 0 })),
        { key: `usage.alone-${size}-${i}`, value: usage, expectedRevision: 0 },
      ]);
      if (!w.ok) throw new Error(w.error.message);
      kvAlone.push(performance.now() - s);
    }
    // What a group commit writes when batches wait: as many whole batches as fit in one write of at most 500 messages.
    const perWrite = Math.floor(499 / size);
    const groupAlone: number[] = [];
    for (let i = 0; i < 20; i++) {
      const s = performance.now();
      const w = await bucket.write([
        ...Array.from({ length: perWrite * size }, (_, m) => ({
          key: `intent.group-${size}-${i}-${m}`,
          value: intent,
          expectedRevision: 0,
        })),
        { key: `usage.group-${size}-${i}`, value: usage, expectedRevision: 0 },
      ]);
      if (!w.ok) throw new Error(w.error.message);
      groupAlone.push(performance.now() - s);
    }
    // The wire alone: the batch's request decoded and validated as the coordinator's endpoint does, a reply of the same
    // size encoded back and validated by the client, no logic between.
    const sample = lastReply.get(size);
    const echo = client.subscribe(`bench.echo.${size}`, {
      callback: (_e, m) => {
        decode(PlaceBatchRequestSchema, m.data);
        m.respond(encode({ ok: true, value: sample }));
      },
    });
    await client.flush();
    const echoNc = await connectTo(server.url, 'bench-echo');
    const wireAlone: number[] = [];
    for (let i = 0; i < 50; i++) {
      const s = performance.now();
      const r = await requestTyped(echoNc, `bench.echo.${size}`, batch(`e-${i}`, size), PlaceBatchReplySchema, { timeoutMs: 30_000 });
      if (!r.ok) throw new Error(r.error.message);
      wireAlone.push(performance.now() - s);
    }
    echo.unsubscribe();
    await echoNc.close();
    const agentsAlone: number[] = [];
    for (let i = 0; i < 50; i++) {
      const s = performance.now();
      await Promise.all(
        Array.from({ length: size }, (_, m) =>
          requestTyped(
            client,
            agentSubject(`n-${(i * size + m) % NODES}`, 'allocate'),
            { ...member(`a-${size}-${i}-${m}`), fence: 1 },
            AllocationSchema,
            {
              timeoutMs: 30_000,
            },
          ),
        ),
      );
      agentsAlone.push(performance.now() - s);
    }
    const index = coordinator.view.index;
    const requests = Array.from({ length: size }, (_, m) => ({
      ...member(`d-${m}`),
      priority: 0,
      cpu: { exclusive: false, numa: 'any' as const },
      metadata: {},
    }));
    const d0 = performance.now();
    const DECISIONS = 200;
    for (let i = 0; i < DECISIONS; i++)
      decideBatch(index, requests, { constraints: [], allowPreemption: false, strategy: 'spread' }, { random: Math.random });
    const decideMs = (performance.now() - d0) / DECISIONS;
    for (const a of [sequential, kvAlone, agentsAlone, groupAlone, wireAlone]) a.sort((x, y) => x - y);
    // A batch waits for its request and reply on the wire, its decision, its one atomic write and its members'
    // allocates (sent at once): the bound of one batch at a time is their sum. Pipelined, the stream takes one atomic
    // batch at a time and the group commit puts as many waiting batches as fit in one: that write alone bounds it.
    const boundSequentialMs = quantile(wireAlone, 0.5) + decideMs + quantile(kvAlone, 0.5) + quantile(agentsAlone, 0.5);
    const row = {
      batchSize: size,
      sequential: {
        batches: sequential.length,
        p50Ms: +quantile(sequential, 0.5).toFixed(2),
        p99Ms: +quantile(sequential, 0.99).toFixed(2),
        vmsPerSecond: sequentialVmsPerSecond,
        boundMs: +boundSequentialMs.toFixed(2),
        boundVmsPerSecond: Math.round((size * 1000) / boundSequentialMs),
      },
      pipelined: {
        batches: count,
        window,
        vmsPerSecond: pipelinedVmsPerSecond,
        boundVmsPerSecond: Math.round((perWrite * size * 1000) / quantile(groupAlone, 0.5)),
      },
      alone: {
        kvBatchP50Ms: +quantile(kvAlone, 0.5).toFixed(2),
        kvBatchMessages: size + 1,
        kvGroupWriteP50Ms: +quantile(groupAlone, 0.5).toFixed(2),
        kvGroupWriteBatches: perWrite,
        wireEchoP50Ms: +quantile(wireAlone, 0.5).toFixed(2),
        allocatesAtOnceP50Ms: +quantile(agentsAlone, 0.5).toFixed(2),
        decisionMs: +decideMs.toFixed(3),
      },
    };
    results.push(row);
  }
  single.sort((a, b) => a - b);
  const [load1 = 0] = loadavg();
  const summary = {
    nodes: NODES,
    agents: 'in-process fakes',
    replicas: 1,
    single: {
      sequentialP50Ms: +quantile(single, 0.5).toFixed(2),
      sequentialPerSecond: singleSequentialPerSecond,
      pipelinedPerSecond: singlePipelinedPerSecond,
      window: 256,
    },
    batches: results,
    loadAverage: { oneMinute: +load1.toFixed(1), cpus: cpus().length },
  };
  console.log(JSON.stringify(summary));
  console.log(
    `  single place: ${singleSequentialPerSecond} VMs/s one at a time (p50 ${quantile(single, 0.5).toFixed(2)} ms), ${singlePipelinedPerSecond} VMs/s with 256 in flight`,
  );
  for (const r of results as {
    batchSize: number;
    sequential: { vmsPerSecond: number; p50Ms: number; boundMs: number; boundVmsPerSecond: number };
    pipelined: { vmsPerSecond: number; window: number; boundVmsPerSecond: number };
    alone: {
      kvBatchP50Ms: number;
      kvBatchMessages: number;
      kvGroupWriteP50Ms: number;
      kvGroupWriteBatches: number;
      wireEchoP50Ms: number;
      allocatesAtOnceP50Ms: number;
      decisionMs: number;
    };
  }[])
    console.log(
      `  batches of ${r.batchSize}: ${r.sequential.vmsPerSecond} VMs/s one batch at a time (p50 ${r.sequential.p50Ms} ms; bound ${r.sequential.boundMs} ms = ` +
        `request and reply on the wire ${r.alone.wireEchoP50Ms} + decision ${r.alone.decisionMs} + atomic write of ${r.alone.kvBatchMessages} messages ${r.alone.kvBatchP50Ms} + allocates at once ${r.alone.allocatesAtOnceP50Ms}, ` +
        `${r.sequential.boundVmsPerSecond} VMs/s), ${r.pipelined.vmsPerSecond} VMs/s with ${r.pipelined.window} batches in flight (bound ${r.pipelined.boundVmsPerSecond} VMs/s: ` +
        `one atomic write at a time, ${r.alone.kvGroupWriteBatches} batches in each, ${r.alone.kvGroupWriteP50Ms} ms)`,
    );
  await coordinator.stop();
  await coordinatorNc.close();
  agents.stop();
  await agentNc.close();
  await client.close();
} finally {
  await cleanupAll();
}
