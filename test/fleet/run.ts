import { AllocationSchema, UsageSnapshotSchema, type UsageSnapshot } from '@allot/core';
import { agentSubject, decode, encode, PlaceReplySchema, schedSubject } from '@allot/protocol';
import { ensureKv, requestTyped } from '@allot/nats';
import { cpus, loadavg, totalmem } from 'node:os';
import { measureKvAlone } from '../../apps/coordinator/bench/kv-alone.ts';
import { jetstream, type NatsConnection } from '../../apps/coordinator/src/nats-deps.ts';
import { NatsBucket } from '../../apps/coordinator/src/store/nats-bucket.ts';
import { connectTo, ensureTestStreams } from '../../apps/coordinator/src/testing/cluster.ts';
import { ClusterView } from '../../apps/coordinator/src/view.ts';
import { CoreListElision } from '../../apps/agent/src/usage-snapshot.ts';
import { inFlight, quantile } from '../harness/bench.ts';
import { cleanupAll, startNatsServer } from '../harness/index.ts';
import { ProcessSampler, startCoordinatorProcess, type CoordinatorProcess, type Usage } from './coordinators.ts';
import { measureDashboard, type DashboardFigures } from './dashboard.ts';
import { Fleet, fleetHost } from './fleet.ts';
import { SimHost, type SimHostShared } from './sim-host.ts';
import { StalenessTracker } from './staleness.ts';
import { ViewWatch } from './view-watch.ts';

export interface FleetRunOptions {
  readonly hosts: number;
  /** Fleet sizes placements are measured at (each <= hosts); the last is `hosts`. */
  readonly sizes: readonly number[];
  readonly coordinators: number;
  readonly heartbeatMs: number;
  /** An unchanged host reports this often (the agent's idleStatusMs); default heartbeatMs. */
  readonly idleStatusMs?: number;
  /** Host changes per second over the fleet (allocations, releases, health changes) in the steady and storm windows. */
  readonly churnPerSecond: number;
  readonly workers: number;
  readonly steadySeconds: number;
  readonly sequentialPlaces: number;
  readonly pipelinedPlaces: number;
  readonly window: number;
  readonly dashboardSeconds: number;
  /** Skip headless Chromium (no /usr/bin/chromium). */
  readonly dashboard: boolean;
}

const TENANTS = 100;
/** No measuring phase runs longer than this (the sequential places half of it), whatever the counts. */
const PHASE_CAP_MS = 20_000;
/** The bucket the per-size KV probe writes (as allot_placements is set up, but watched by no coordinator). */
const PROBE_BUCKET = 'fleet_probe';
/** How long a view may take to show every host ready after the fleet grew. */
const VIEW_WAIT_MS = 90_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sortNum = (xs: number[]) => [...xs].sort((a, b) => a - b);
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/**
 * The counting batch of a place (intent create + usage record, one atomic batch) alone, one at a time, while the fleet
 * runs: the KV's share of a place at this size, p50 ms (the store is a file store on the same disk as the streams the
 * fleet writes).
 */
async function kvBatchP50(nc: NatsConnection, tag: string, count: number): Promise<number> {
  // A bucket of its own with the placements bucket's settings: the coordinators watch allot_placements, and probe
  // records there would be read (and refused, and logged) by every one of them.
  const kv = await ensureKv(jetstream(nc), PROBE_BUCKET, { history: 1, replicas: 1, allowAtomic: true, allowMsgTtl: true });
  if (!kv.ok) throw new Error(kv.error.message);
  const bucket = new NatsBucket(nc, kv.value, PROBE_BUCKET);
  const value = encode({ probe: tag });
  const ms: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const r = await bucket.write([
      { key: `intent.probe-${tag}-${i}`, value, expectedRevision: 0 },
      { key: `usage.probe-${tag}-${i}`, value, expectedRevision: 0 },
    ]);
    if (!r.ok) throw new Error(r.error.message);
    ms.push(performance.now() - t0);
  }
  return quantile(sortNum(ms), 0.5);
}

/**
 * What one of these hosts' reports costs a coordinator to take in, µs: msgpack decode + schema validation (as
 * usage-feed.ts does) + ClusterView.apply into a view of 1,000 such nodes; and its size. For the full snapshot (with the
 * per-core list) and for a heartbeat of an unchanged host (without it, usage-snapshot.ts): the bound on how many
 * reports a second one core can follow.
 */
async function snapshotIngestCost(): Promise<{ full: IngestCost; heartbeat: IngestCost }> {
  const unused = { publish: () => undefined } as unknown as SimHostShared['events'];
  const host = new SimHost(fleetHost(0, 2_000, 250), { publisher: undefined as unknown as SimHostShared['publisher'], events: unused });
  await host.build();
  const snapshot = await host.snapshot();
  if (!snapshot.ok) throw new Error(snapshot.error.message);
  const elision = new CoreListElision();
  const full = elision.forPublish(snapshot.value, 0);
  elision.published(full, 0);
  const heartbeat = elision.forPublish(snapshot.value, 1);
  const view = new ClusterView({ lostAfterMs: 60_000 });
  const ids = Array.from({ length: 1_000 }, (_, i) => `ingest-${i}`);
  for (const nodeId of ids) view.apply({ ...full, nodeId });
  const cost = (s: UsageSnapshot): IngestCost => {
    const bytes = ids.map((nodeId) => encode({ ...s, nodeId }));
    const once = (b: Uint8Array) => {
      const d = decode(UsageSnapshotSchema, b, Number.POSITIVE_INFINITY);
      if (d.ok) view.apply(d.value);
    };
    for (const b of bytes) once(b);
    // CPU time, not wall time: on a loaded machine the wall clock mostly measures waiting for a core.
    const t0 = process.cpuUsage();
    for (let round = 0; round < 3; round++) for (const b of bytes) once(b);
    const used = process.cpuUsage(t0);
    return { micros: (used.user + used.system) / 3_000, bytes: bytes[0]?.length ?? 0 };
  };
  return { full: cost(full), heartbeat: cost(heartbeat) };
}

interface IngestCost {
  readonly micros: number;
  readonly bytes: number;
}

/** One line of the printed table: what, the figure, its target, and the bound that explains it (or a note). */
export type FigureRow = readonly [what: string, figure: string, target: string, note: string];

interface SizeFigures {
  readonly size: number;
  readonly viewCompleteMs: number;
  readonly seqP50: number;
  readonly seqP99: number;
  readonly perSecond: number;
  readonly failed: number;
  /** Places measured one at a time, and pipelined (phases are capped in time). */
  readonly sequential: number;
  readonly pipelined: number;
  /** CPU ms per second over 5 s with no churn and no places: coordinators, nats-server, workers. */
  readonly idleCpu: { readonly coordinators: number; readonly nats: number; readonly workers: number };
  /** The larger coordinator RSS at the end of that window, MiB. */
  readonly idleRss: number;
  /** The counting batch alone at this size, p50 ms. */
  readonly kvP50: number;
}

/** The fleet run of `pnpm fleet`: every figure of the fleet section of issue 16 in one run, as rows to print. */
export async function runFleet(o: FleetRunOptions, log: (line: string) => void = console.log): Promise<FigureRow[]> {
  const rows: FigureRow[] = [];
  try {
    const server = await startNatsServer();
    const client = await connectTo(server.url, 'fleet-client');
    await ensureTestStreams(client);
    log(`machine: ${cpus().length} vCPUs, ${Math.round(totalmem() / 2 ** 30)} GiB (shared with other work); load ${loadNow()}`);

    // ---- the parts alone, before any load of ours ----
    const responder = await connectTo(server.url, 'fleet-echo');
    responder.subscribe('fleet.echo', { callback: (_e, m) => void m.respond(m.data) });
    await responder.flush();
    const payload = encode({ request: { requestId: 'x'.repeat(36), tenantId: 't1', resources: { memoryMiB: 1024, vcpus: 1 } } });
    const echoSeq: number[] = [];
    for (let i = 0; i < 500; i++) {
      const t0 = performance.now();
      await client.request('fleet.echo', payload, { timeout: 5_000 });
      echoSeq.push(performance.now() - t0);
    }
    const echoPipe = await inFlight(5_000, o.window, () => client.request('fleet.echo', payload, { timeout: 10_000 }), PHASE_CAP_MS);
    const echoRate = (echoPipe.done * 1000) / echoPipe.ms;
    const echoP50 = quantile(sortNum(echoSeq), 0.5);
    await responder.close();
    // The KV alone on a server of its own (same machine, same disk): measureKvAlone writes into allot_placements, whose
    // records the coordinators would then load (fake intents and usage records of hundreds of tenants).
    const aloneServer = await startNatsServer();
    const aloneClient = await connectTo(aloneServer.url, 'fleet-kv-alone');
    const kv = await measureKvAlone(aloneClient, { tag: 'fleet', replicas: 1, count: 1_000, batchWindow: 16, casWindow: o.window });
    await aloneClient.close();
    await aloneServer.stop();
    const costs = await snapshotIngestCost();
    const ingest = costs.heartbeat;
    log(
      `alone: one report of a 64-core host, decode + validate + view apply (CPU time): full snapshot ${costs.full.bytes} bytes ${fmt(costs.full.micros)} µs; heartbeat without the per-core list ${ingest.bytes} bytes ${fmt(ingest.micros)} µs`,
    );
    log(
      `alone: NATS echo p50 ${fmt(echoP50, 3)} ms, ${fmt(echoRate)} req/s (${o.window} in flight); KV 2-key batch p50 ${fmt(kv.batchP50Ms, 2)} ms, ${fmt(kv.batchesPerSecond)} batches/s; group batch of ${kv.groupBatchMessages} p50 ${fmt(kv.groupBatchP50Ms, 1)} ms`,
    );

    // ---- coordinators, their views, the fleet ----
    const coordinators: CoordinatorProcess[] = [];
    for (let i = 0; i < o.coordinators; i++) coordinators.push(await startCoordinatorProcess(server.url, `c${i + 1}`));
    await Promise.all(coordinators.map((c) => c.ready));
    const tracker = new StalenessTracker(o.coordinators);
    const watches = coordinators.map((c, i) => new ViewWatch(c.url, (row, at) => tracker.onRow(i, row.nodeId, row.seq, at)));
    await Promise.all(watches.map((w) => w.open()));
    const fleet = await Fleet.start({
      natsUrl: server.url,
      workers: o.workers,
      heartbeatMs: o.heartbeatMs,
      ...(o.idleStatusMs === undefined ? {} : { idleStatusMs: o.idleStatusMs }),
      onChanges: (changes) => tracker.addChanges(changes),
    });
    const coordinatorPids = coordinators.map((c) => c.process.pid);
    const natsPid = server.pid ?? 0;

    const placeRequest = (id: string, tenantId: string) => ({
      request: { requestId: id, tenantId, resources: { memoryMiB: 1_024, vcpus: 1 } },
    });
    const place = (id: string, tenantId: string, timeoutMs = 30_000) =>
      requestTyped(client, schedSubject('place', tenantId), placeRequest(id, tenantId), PlaceReplySchema, { timeoutMs });

    const sizes: SizeFigures[] = [];
    let agentAlone: { p50: number; perSecond: number } | undefined;
    let steady: { usage: Map<number, Usage>; staleness: number[]; changes: number; sseBytesPerSecond: number; seconds: number } | undefined;
    let storm: { usage: Map<number, Usage>; staleness: number[]; changes: number } | undefined;
    for (const size of o.sizes) {
      const t0 = performance.now();
      await fleet.grow(size);
      // A view that does not complete in time is a figure too (what it shows then), not the end of the run.
      const complete = await Promise.all(watches.map((w) => w.until(() => w.ready() >= size, VIEW_WAIT_MS, `${size} nodes ready`))).then(
        () => true,
        () => false,
      );
      const viewCompleteMs = complete ? Math.round(performance.now() - t0) : Number.NaN;
      log(
        complete
          ? `${size} hosts: every coordinator's view complete ${viewCompleteMs} ms after grow() began; load ${loadNow()}`
          : `${size} hosts: views NOT complete after ${VIEW_WAIT_MS} ms: ${watches.map((w) => `${w.ready()} ready of ${w.nodes.size} shown`).join(', ')}; load ${loadNow()}`,
      );
      await sleep(2_000);
      const idle = new ProcessSampler([...coordinatorPids, natsPid, ...fleet.pids()]);
      await sleep(5_000);
      const idleUsage = idle.stop();
      const sum = (pids: number[]) => pids.reduce((s, pid) => s + (idleUsage.get(pid)?.cpuMsPerSecond ?? 0), 0);
      const idleCpu = { coordinators: sum(coordinatorPids), nats: sum([natsPid]), workers: sum(fleet.pids()) };
      const idleRss = Math.max(...coordinatorPids.map((pid) => idleUsage.get(pid)?.rssEndMiB ?? 0));
      const kvP50 = await kvBatchP50(client, `s${size}`, 20);

      if (agentAlone === undefined) {
        // One hop to the simulated agents, no coordinator: what the place's agent hop costs alone.
        const seq: number[] = [];
        for (let i = 0; i < 300; i++) {
          const t = performance.now();
          await requestTyped(
            client,
            agentSubject(fleet.nodeIds[i % size] as string, 'allocate'),
            { requestId: `alone-s-${i}`, tenantId: 'alone', resources: { memoryMiB: 16, vcpus: 1 } },
            AllocationSchema,
            { timeoutMs: 10_000 },
          );
          seq.push(performance.now() - t);
        }
        const pipe = await inFlight(
          3_000,
          o.window,
          (i) =>
            requestTyped(
              client,
              agentSubject(fleet.nodeIds[i % size] as string, 'allocate'),
              { requestId: `alone-p-${i}`, tenantId: 'alone', resources: { memoryMiB: 16, vcpus: 1 } },
              AllocationSchema,
              { timeoutMs: 10_000 },
            ),
          PHASE_CAP_MS,
        );
        agentAlone = { p50: quantile(sortNum(seq), 0.5), perSecond: (pipe.done * 1000) / pipe.ms };
        log(
          `alone: agent allocate (simulated hosts) p50 ${fmt(agentAlone.p50, 2)} ms, ${fmt(agentAlone.perSecond)}/s (${o.window} in flight)`,
        );
      }

      const last = size === o.sizes.at(-1);
      if (last) {
        fleet.churn(o.churnPerSecond);
        await sleep(3_000);
        tracker.reset();
        const bytes0 = watches.map((w) => w.bytes);
        const sampler = new ProcessSampler(coordinatorPids);
        const t = performance.now();
        await sleep(o.steadySeconds * 1000);
        const seconds = (performance.now() - t) / 1000;
        const usage = sampler.stop();
        const bytes = watches.reduce((s, w, i) => s + w.bytes - (bytes0[i] ?? 0), 0) / watches.length;
        steady = { usage, staleness: [...tracker.samples], changes: tracker.changes, sseBytesPerSecond: bytes / seconds, seconds };
        log(
          `${size} hosts, steady (${o.churnPerSecond} changes/s): staleness p50 ${fmt(quantile(sortNum(steady.staleness), 0.5))} ms p99 ${fmt(quantile(sortNum(steady.staleness), 0.99))} ms over ${steady.staleness.length} of ${steady.changes} changes`,
        );
      }

      // Warm-up, then one at a time, then pipelined over TENANTS tenants (the storm at the last size, churn on).
      for (let i = 0; i < 20; i++) await place(`w-${size}-${i}`, `t${i % TENANTS}`);
      const seq: number[] = [];
      const seqFailed: string[] = [];
      const seqDeadline = performance.now() + PHASE_CAP_MS / 2;
      for (let i = 0; i < o.sequentialPlaces && performance.now() < seqDeadline; i++) {
        const t = performance.now();
        const r = await place(`s-${size}-${i}`, `t${i % TENANTS}`);
        // A refusal or a timeout is a figure of this size (counted), not the end of the run.
        if (r.ok) seq.push(performance.now() - t);
        else seqFailed.push(`${r.error.code}: ${r.error.message}`);
      }
      if (last) tracker.reset();
      const sampler = new ProcessSampler(coordinatorPids);
      let failed = 0;
      const pipe = await inFlight(
        o.pipelinedPlaces,
        o.window,
        async (i) => {
          const r = await place(`p-${size}-${i}`, `t${i % TENANTS}`);
          if (!r.ok) failed += 1;
        },
        PHASE_CAP_MS,
      );
      const stormUsage = sampler.stop();
      if (last) storm = { usage: stormUsage, staleness: [...tracker.samples], changes: tracker.changes };
      if (seqFailed.length > 0) log(`${size} hosts: ${seqFailed.length} sequential places failed, first: ${seqFailed[0]}`);
      const s = sortNum(seq);
      const figures: SizeFigures = {
        size,
        viewCompleteMs,
        seqP50: quantile(s, 0.5),
        seqP99: quantile(s, 0.99),
        perSecond: (pipe.done * 1000) / pipe.ms,
        failed: failed + seqFailed.length,
        sequential: seq.length,
        pipelined: pipe.done,
        idleCpu,
        idleRss,
        kvP50,
      };
      sizes.push(figures);
      log(
        `${size} hosts: place p50 ${fmt(figures.seqP50, 2)} ms p99 ${fmt(figures.seqP99, 2)} ms; ${fmt(figures.perSecond)} places/s (${o.window} in flight, ${failed} failed); idle CPU ms/s: coordinators ${idleCpu.coordinators}, nats ${idleCpu.nats}, workers ${idleCpu.workers}; coordinator RSS ${idleRss} MiB; counting batch alone p50 ${fmt(kvP50, 1)} ms`,
      );
    }

    // ---- the dashboard at full size, churn still streaming ----
    let dashboard: DashboardFigures | string;
    if (!o.dashboard) dashboard = 'skipped (--no-dashboard)';
    else {
      try {
        dashboard = await measureDashboard((coordinators[0] as CoordinatorProcess).url, o.dashboardSeconds);
      } catch (e) {
        dashboard = `failed: ${(e as Error).message.split('\n')[0]}`;
      }
    }
    fleet.churn(0);

    // ---- cold start: a new coordinator process against the full fleet ----
    const cold = await startCoordinatorProcess(server.url, 'cold');
    const readyAt = await cold.ready.catch(() => Number.NaN);
    const coldWatch = new ViewWatch(cold.url);
    await coldWatch.open().catch(() => undefined);
    const coldComplete = await coldWatch
      .until(() => coldWatch.ready() >= o.hosts, 60_000, `${o.hosts} nodes ready`)
      .then(
        () => true,
        () => false,
      );
    const completeAt = coldComplete ? performance.now() : Number.NaN;
    const coldShown = `${coldWatch.ready()} ready of ${coldWatch.nodes.size} shown`;
    const coldRss = new ProcessSampler([cold.process.pid]).stop().get(cold.process.pid)?.rssEndMiB ?? 0;
    coldWatch.close();
    await cold.process.stop('SIGTERM', 5_000);
    // Where the start-up went: the coordinator's own log lines, ms after the spawn (wall clock, one machine).
    const spawnWall = Date.now() - (performance.now() - cold.spawnedAt);
    const timeline = cold.process.lines
      .filter((l): l is Record<string, unknown> => typeof l === 'object' && typeof l['time'] === 'number' && typeof l['msg'] === 'string')
      .map((l) => `${String(l['msg'])} ${Math.round((l['time'] as number) - spawnWall)}`)
      .slice(0, 8)
      .join(', ');
    const coldStart = { readyMs: readyAt - cold.spawnedAt, completeMs: completeAt - cold.spawnedAt, rss: coldRss, timeline };

    for (const w of watches) w.close();
    await fleet.stop();

    // ---- the table ----
    const first = sizes[0] as SizeFigures;
    const full = sizes.at(-1) as SizeFigures;
    const worst = (u: Map<number, Usage> | undefined, key: keyof Usage) => Math.max(0, ...[...(u?.values() ?? [])].map((x) => x[key]));
    const p = (xs: number[] | undefined, q: number) => quantile(sortNum(xs ?? []), q);
    const steadyP99 = p(steady?.staleness, 0.99);
    const statusMs = o.idleStatusMs ?? o.heartbeatMs;
    rows.push([
      `view staleness, steady, ${o.hosts} hosts, p50 / p99`,
      `${fmt(p(steady?.staleness, 0.5))} / ${fmt(steadyP99)} ms`,
      'p99 <= 1000 ms',
      `${steady?.staleness.length ?? 0} changes seen by all ${o.coordinators} coordinators of ${steady?.changes ?? 0}; the feed ticks every 250 ms (part of the figure); status of an unchanged host every ${statusMs} ms: ${fmt((o.hosts * 1000) / statusMs)} heartbeats/s x ${fmt(ingest.micros)} µs = ${fmt((o.hosts * ingest.micros) / statusMs)} ms/s of a coordinator's core to take them in`,
    ]);
    rows.push([
      `view staleness, placement storm, p50 / p99`,
      `${fmt(p(storm?.staleness, 0.5))} / ${fmt(p(storm?.staleness, 0.99))} ms`,
      'p99 <= 1000 ms',
      `${storm?.staleness.length ?? 0} of ${storm?.changes ?? 0} changes`,
    ]);
    rows.push([
      `coordinator RSS, steady / storm (largest of ${o.coordinators})`,
      `${worst(steady?.usage, 'rssMaxMiB')} / ${worst(storm?.usage, 'rssMaxMiB')} MiB`,
      '<= 300 MB',
      '',
    ]);
    rows.push([
      `coordinator CPU, steady / storm (busiest)`,
      `${worst(steady?.usage, 'cpuMsPerSecond')} / ${worst(storm?.usage, 'cpuMsPerSecond')} ms/s`,
      '',
      '1000 ms/s = one core of the two',
    ]);
    rows.push([
      `coordinator cold start, ${o.hosts} hosts: ready / complete view`,
      `${fmt(coldStart.readyMs)} / ${fmt(coldStart.completeMs)} ms`,
      'complete <= 5000 ms',
      `${coldComplete ? '' : `NOT complete within 60 s of ready: ${coldShown}; `}RSS after ${coldStart.rss} MiB; ${coldStart.timeline}`,
    ]);
    // A place is two request hops, the counting batch (grouped) and the `placed` compare-and-set (one key per place).
    const bound = Math.min(echoRate / 2, agentAlone?.perSecond ?? Number.POSITIVE_INFINITY, kv.casPerSecond);
    for (const s of sizes) {
      const spare = (x: SizeFigures) => 2 * 1000 - x.idleCpu.coordinators - x.idleCpu.nats - x.idleCpu.workers;
      const cpuBound = (first.perSecond * spare(s)) / spare(first);
      rows.push([
        `place at ${s.size} hosts: p50 / p99, pipelined`,
        `${fmt(s.seqP50, 2)} / ${fmt(s.seqP99, 2)} ms (${s.sequential}), ${fmt(s.perSecond)}/s (${s.pipelined})`,
        s === first ? '' : `>= ${fmt(0.9 * first.perSecond)}/s (90% of ${first.size})`,
        `bound ${fmt(bound)}/s (min of echo/2, agent alone, KV create+CAS); the fleet's own idle load ${2000 - spare(s)} ms/s of 2000 leaves ${fmt(cpuBound)}/s; counting batch alone at this size p50 ${fmt(s.kvP50, 1)} ms${s.failed > 0 ? `; ${s.failed} failed` : ''}`,
      ]);
    }
    rows.push([
      'parts alone: NATS echo p50, pipelined; agent allocate p50, pipelined',
      `${fmt(echoP50, 3)} ms, ${fmt(echoRate)}/s; ${fmt(agentAlone?.p50 ?? Number.NaN, 2)} ms, ${fmt(agentAlone?.perSecond ?? Number.NaN)}/s`,
      '',
      `KV 2-key batch p50 ${fmt(kv.batchP50Ms, 2)} ms, ${fmt(kv.batchesPerSecond)}/s with ${kv.batchWindow} in flight; group batch (${kv.groupBatchMessages} msgs) p50 ${fmt(kv.groupBatchP50Ms, 1)} ms; KV create+CAS pairs ${fmt(kv.casPerSecond)}/s (CAS p50 ${fmt(kv.casP50Ms, 2)} ms)`,
    ]);
    rows.push([
      `placements/s at ${full.size} vs ${first.size} hosts`,
      `${fmt((100 * full.perSecond) / first.perSecond)} %`,
      '>= 90 %',
      `view complete after growth: ${sizes.map((s) => `${s.size}: ${Number.isNaN(s.viewCompleteMs) ? `not within ${VIEW_WAIT_MS} ms` : `${s.viewCompleteMs} ms`}`).join(', ')}`,
    ]);
    if (typeof dashboard === 'string') rows.push(['dashboard', dashboard, '', '']);
    else {
      rows.push([
        `dashboard, ${o.hosts} hosts: first complete paint`,
        `${dashboard.firstPaintMs} ms`,
        '<= 2000 ms',
        `reload to drawn rows ${dashboard.gotoToReadyMs} ms (warm browser)`,
      ]);
      rows.push([
        'dashboard frame time while updates stream: p50 / p99 / max',
        `${fmt(dashboard.frame.p50, 1)} / ${fmt(dashboard.frame.p99, 1)} / ${fmt(dashboard.frame.max, 1)} ms`,
        'p99 <= 50 ms',
        `${dashboard.frame.count} frames, ${dashboard.deltas} deltas; render handler p99 ${fmt(dashboard.render.p99, 1)} ms, max ${fmt(dashboard.render.max, 1)} ms`,
      ]);
    }
    rows.push([
      'SSE bytes per second per client (steady)',
      `${fmt((steady?.sseBytesPerSecond ?? 0) / 1024, 1)} KiB/s`,
      '',
      `${o.churnPerSecond} changes/s and a ${o.heartbeatMs} ms heartbeat over ${o.hosts} hosts`,
    ]);
    await client.close();
  } finally {
    await cleanupAll();
  }
  return rows;
}

function loadNow(): string {
  return loadavg()
    .map((x) => x.toFixed(1))
    .join(' ');
}

/** The rows as an aligned table. */
export function formatRows(rows: readonly FigureRow[]): string {
  const header: FigureRow = ['figure', 'measured', 'target', 'bound / note'];
  const all = [header, ...rows];
  const widths = [0, 1, 2].map((i) => Math.max(...all.map((r) => r[i]?.length ?? 0)));
  return all.map((r) => r.map((cell, i) => (i < 3 ? cell.padEnd(widths[i] ?? 0) : cell)).join(' | ')).join('\n');
}
