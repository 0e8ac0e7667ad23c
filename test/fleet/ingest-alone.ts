// `node test/fleet/ingest-alone.ts --hosts 10000 --heartbeat-ms 5000 --mode elided|full`: the coordinators' side of the
// fleet alone. One process publishes what N 64-core hosts would (one real snapshot of a SimHost, under N node ids, each
// host's heartbeat spread over the period, `--churn` changes a second with a new seq) into a real nats-server, and two
// real coordinator processes follow it; the hosts' own cost (N HostManagers) is left out, so this measures whether
// JetStream stores the reports and the coordinators take them in. `--mode full`: every heartbeat carries the per-core
// list (agents before the heartbeat change); `elided`: only the first (usage-snapshot.ts). Every host holds its node lease
// in KV allot_nodes, taken and renewed every 5 s by the agent's own NodeLease (node-lease.ts), so the coordinators' watch
// of the leases is in the figures. `--idle-status-ms` (default the heartbeat): an unchanged host reports this often, as
// an agent with `idleStatusMs`; a change is reported at once. Prints views complete, JetStream acks/s, staleness,
// coordinator CPU and RSS, and a third coordinator's cold start (docs/benchmarks.md, "Fleet").
import type { UsageSnapshot } from '@allot/core';
import { ensureKv } from '@allot/nats';
import { encode, KV_NODES, NODE_LEASE_TTL_MS, usageSubject } from '@allot/protocol';
import { parseArgs } from 'node:util';
import { NodeLease, type NodeLeaseOptions } from '../../apps/agent/src/node-lease.ts';
import { CoreListElision } from '../../apps/agent/src/usage-snapshot.ts';
import { jetstream } from '../../apps/coordinator/src/nats-deps.ts';
import { connectTo, ensureTestStreams } from '../../apps/coordinator/src/testing/cluster.ts';
import { quantile } from '../harness/bench.ts';
import { cleanupAll, startNatsServer } from '../harness/index.ts';
import { ProcessSampler, startCoordinatorProcess } from './coordinators.ts';
import { fleetHost } from './fleet.ts';
import { SimHost, silentLogger, type SimHostShared } from './sim-host.ts';
import { StalenessTracker } from './staleness.ts';
import { ViewWatch } from './view-watch.ts';

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '10000' },
    'heartbeat-ms': { type: 'string', default: '5000' },
    'idle-status-ms': { type: 'string' },
    mode: { type: 'string', default: 'elided' },
    churn: { type: 'string', default: '100' },
    'steady-s': { type: 'string', default: '20' },
    'complete-s': { type: 'string', default: '90' },
  },
});
const hosts = Number(values.hosts);
const heartbeatMs = Number(values['heartbeat-ms']);
const idleStatusMs = Number(values['idle-status-ms'] ?? heartbeatMs);
const churn = Number(values.churn);
const elided = values.mode !== 'full';
const log = (line: string) => console.log(line);
const fmt = (n: number) => (Number.isFinite(n) ? String(Math.round(n)) : 'n/a');
const sortNum = (xs: number[]) => [...xs].sort((a, b) => a - b);
/** Publishes awaiting their ack at most: past it a tick's publishes wait (counted as behind). */
const WINDOW = 2_048;

try {
  const server = await startNatsServer();
  const nc = await connectTo(server.url, 'ingest-alone');
  await ensureTestStreams(nc);
  const js = jetstream(nc);

  // One real snapshot, as a fleet host's agent builds it; its heartbeat form from the agent's own elision.
  const unused = { publish: () => undefined } as unknown as SimHostShared['events'];
  const sim = new SimHost(fleetHost(0, heartbeatMs, 250), {
    publisher: undefined as unknown as SimHostShared['publisher'],
    events: unused,
  });
  await sim.build();
  const built = await sim.snapshot();
  if (!built.ok) throw new Error(built.error.message);
  const elision = new CoreListElision();
  const full = elision.forPublish(built.value, 0);
  elision.published(full, 0);
  const beat = elision.forPublish(built.value, 1);
  // What the agent announces with idleStatusMs set: coordinators judge such a node by its lease renewals.
  const announced = values['idle-status-ms'] === undefined ? {} : { idleStatusMs };
  const ids = Array.from({ length: hosts }, (_, i) => fleetHost(i, heartbeatMs, 250).nodeId);
  const seqs = new Map(ids.map((id) => [id, 1]));
  const as = (s: UsageSnapshot, nodeId: string, seq: number, committed = s.memory.committed) =>
    encode({ ...s, nodeId, bootId: `${nodeId}-boot`, seq, heartbeatMs, ...announced, memory: { ...s.memory, committed } });
  const firstBytes = ids.map((id) => as(full, id, 1));
  const beatBytes = ids.map((id) => as(elided ? beat : full, id, 1));
  log(
    `ingest alone: ${hosts} hosts, heartbeat ${heartbeatMs} ms, idle status ${idleStatusMs} ms (${fmt((hosts * 1000) / idleStatusMs)}/s), ${churn} changes/s, mode ${elided ? 'elided' : 'full'}: heartbeat ${beatBytes[0]?.length} bytes, full ${firstBytes[0]?.length} bytes`,
  );

  // Every host's node lease, taken as an agent takes it (a few hundred at once), then renewed every 5 s by its own timer.
  const kv = await ensureKv(js, KV_NODES, { history: 1, ttlMs: NODE_LEASE_TTL_MS, replicas: 1 });
  if (!kv.ok) throw new Error(kv.error.message);
  const leases: NodeLease[] = [];
  let leasesLost = 0;
  for (let i = 0; i < hosts; i += 250) {
    const taken = await Promise.all(
      ids
        .slice(i, i + 250)
        .map((nodeId) =>
          NodeLease.acquire(
            kv.value,
            nodeId,
            { identity: `${nodeId}-identity`, bootId: `${nodeId}-boot`, host: 'ingest-alone', pid: process.pid, since: Date.now() },
            { log: silentLogger as NodeLeaseOptions['log'], onLost: () => void (leasesLost += 1) },
          ),
        ),
    );
    for (const t of taken) {
      if (!t.ok) throw new Error(t.error.message);
      leases.push(t.value);
    }
  }
  log(`node leases: ${leases.length} taken; an unchanged host reports every ${idleStatusMs} ms`);

  const coordinators = [await startCoordinatorProcess(server.url, 'c1'), await startCoordinatorProcess(server.url, 'c2')];
  await Promise.all(coordinators.map((c) => c.ready));
  const tracker = new StalenessTracker(coordinators.length);
  const watches = coordinators.map((c, i) => new ViewWatch(c.url, (row, at) => tracker.onRow(i, row.nodeId, row.seq, at)));
  await Promise.all(watches.map((w) => w.open()));

  let inFlight = 0;
  let sent = 0;
  let acked = 0;
  let failed = 0;
  let behind = 0;
  const publish = (nodeId: string, bytes: Uint8Array): boolean => {
    if (inFlight >= WINDOW) {
      behind += 1;
      return false;
    }
    inFlight += 1;
    sent += 1;
    js.publish(usageSubject(nodeId), bytes, { timeout: 30_000 }).then(
      () => ((inFlight -= 1), (acked += 1)),
      () => ((inFlight -= 1), (failed += 1)),
    );
    return true;
  };

  // Growth: every host's first (full) snapshot, as fast as the window allows; then heartbeats and changes per 100 ms tick.
  const t0 = performance.now();
  for (let i = 0; i < hosts;) {
    if (publish(ids[i] as string, firstBytes[i] as Uint8Array)) i++;
    else await new Promise((resolve) => setTimeout(resolve, 5));
  }
  behind = 0;
  let next = 0;
  let carry = 0;
  let changeCarry = 0;
  const changed = new Set<number>();
  let lastTick = performance.now();
  const tick = setInterval(() => {
    // By the time passed, not the ticks: a late tick (a loaded machine) sends what fell due meanwhile.
    const now = performance.now();
    carry += (hosts * (now - lastTick)) / idleStatusMs;
    changeCarry += (churn * (now - lastTick)) / 1000;
    lastTick = now;
    for (; carry >= 1; carry -= 1) {
      const i = next;
      next = (next + 1) % hosts;
      const id = ids[i] as string;
      // A changed host's heartbeat carries its latest seq (encoded then); the others' were encoded once.
      if (!changed.has(i)) publish(id, beatBytes[i] as Uint8Array);
      else publish(id, as(elided ? beat : full, id, seqs.get(id) ?? 1, (seqs.get(id) ?? 1) * 1024));
    }
    const changes: Array<readonly [string, number, number]> = [];
    for (; changeCarry >= 1; changeCarry -= 1) {
      const i = Math.floor(Math.random() * hosts);
      const id = ids[i] as string;
      const seq = (seqs.get(id) ?? 1) + 1;
      seqs.set(id, seq);
      changed.add(i);
      // A shared VM allocated: memory committed moves, the cores' layout does not (a heartbeat-sized report).
      if (publish(id, as(elided ? beat : full, id, seq, seq * 1024))) changes.push([id, seq, Date.now()]);
    }
    tracker.addChanges(changes);
  }, 100);

  const completeMs = Number(values['complete-s']) * 1000;
  const complete = await Promise.all(
    watches.map((w) =>
      w
        .until(() => w.ready() >= hosts, completeMs, 'all ready')
        .then(
          () => performance.now() - t0,
          () => undefined,
        ),
    ),
  );
  log(
    `views complete: ${complete.map((ms, i) => (ms === undefined ? `c${i + 1} NOT (${watches[i]?.ready()} ready of ${watches[i]?.nodes.size})` : `c${i + 1} ${fmt(ms)} ms`)).join(', ')}`,
  );

  tracker.reset();
  const pids = coordinators.map((c) => c.process.pid);
  const sampler = new ProcessSampler([...pids, server.pid ?? 0]);
  const acked0 = acked;
  const sent0 = sent;
  const behind0 = behind;
  const s0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, Number(values['steady-s']) * 1000));
  const seconds = (performance.now() - s0) / 1000;
  const usage = sampler.stop();
  const st = sortNum(tracker.samples);
  log(
    `steady ${fmt(seconds)} s: sent ${fmt((sent - sent0) / seconds)}/s of ${fmt((hosts * 1000) / idleStatusMs + churn)}/s due (the publisher's own share of the CPU), JetStream acks ${fmt((acked - acked0) / seconds)}/s, ${behind - behind0} publishes held back (window full), ${failed} failed; staleness p50 ${fmt(quantile(st, 0.5))} ms p99 ${fmt(quantile(st, 0.99))} ms over ${st.length} of ${tracker.changes} changes`,
  );
  log(`ready at the end of the steady phase: ${watches.map((w, i) => `c${i + 1} ${w.ready()} of ${w.nodes.size}`).join(', ')}`);
  for (const [i, pid] of pids.entries()) {
    const u = usage.get(pid);
    log(`coordinator c${i + 1}: CPU ${u?.cpuMsPerSecond} ms/s, RSS max ${u?.rssMaxMiB} MiB`);
  }
  log(
    `nats-server: CPU ${usage.get(server.pid ?? 0)?.cpuMsPerSecond} ms/s; node leases renewed ${fmt((hosts * 1000) / 5_000)}/s, ${leasesLost} lost`,
  );

  // Cold start beside the two: spawn -> ready -> every host ready in its feed.
  const cold = await startCoordinatorProcess(server.url, 'cold');
  const readyAt = await cold.ready;
  const cw = new ViewWatch(cold.url);
  await cw.open();
  const coldDone = await cw
    .until(() => cw.ready() >= hosts, 60_000, 'all ready')
    .then(
      () => performance.now(),
      () => undefined,
    );
  const coldRss = new ProcessSampler([cold.process.pid]).stop().get(cold.process.pid)?.rssEndMiB;
  const spawnWall = Date.now() - (performance.now() - cold.spawnedAt);
  const timeline = cold.process.lines
    .filter((l): l is Record<string, unknown> => typeof l === 'object' && typeof l['time'] === 'number')
    .map((l) => `${String(l['msg'])} ${Math.round((l['time'] as number) - spawnWall)}`)
    .slice(0, 6)
    .join(', ');
  log(
    `cold start: ready ${fmt(readyAt - cold.spawnedAt)} ms, complete view ${coldDone === undefined ? `NOT within 60 s (${cw.ready()} ready)` : `${fmt(coldDone - cold.spawnedAt)} ms`}, RSS ${coldRss} MiB; ${timeline}`,
  );
  clearInterval(tick);
  await Promise.all(leases.map((l) => l.release()));
  cw.close();
  for (const w of watches) w.close();
  await nc.close();
} finally {
  await cleanupAll();
}
