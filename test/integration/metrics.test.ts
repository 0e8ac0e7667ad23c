import type { PlaceRequestInput } from '@allot/protocol';
import type { Result } from '@allot/core';
import parsePrometheusTextFormat, { type PromFamily } from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentRequest, cleanupAll, freePort, startLocalCluster, waitFor, type LocalCluster } from '../harness/index.ts';

/*
 * GET /metrics of a real coordinator (on its dashboard HTTP server) and of real agents (their own `http` port),
 * parsed as Prometheus text: the families exist with the right types and conventional names, and the values match
 * what the test did (placements, a refusal, the memory committed).
 */
const MIB = 1024 * 1024;
const NODES = ['m1', 'm2'];
const PLACED = 6;
const VM_MIB = 256;

let cluster: LocalCluster;
const agentPorts = new Map<string, number>();
let coordinatorPort = 0;
let dashboardPort = 0;

beforeAll(async () => {
  for (const n of NODES) agentPorts.set(n, await freePort());
  coordinatorPort = await freePort();
  dashboardPort = await freePort();
  cluster = await startLocalCluster({
    agents: NODES.map((nodeId) => ({
      nodeId,
      simulatedHost: { cores: 64, memoryMiB: 16_384 },
      env: { ALLOT_HTTP_PORT: String(agentPorts.get(nodeId)) },
    })),
    coordinatorConfig: { metrics: { port: coordinatorPort }, http: { port: dashboardPort } },
  });
}, 120_000);

afterAll(async () => {
  await cleanupAll();
});

function okValue<T>(r: Result<T>, what: string): T {
  if (!r.ok) throw new Error(`${what}: ${r.error.code}: ${r.error.message}`);
  return r.value;
}

type Sample = { labels: Record<string, string>; value: number };

/**
 * Samples of one series name read from the text. parse-prometheus-text-format folds every series of a histogram into
 * one (it only knows histograms labelled by `le` alone), so labelled histograms are read here.
 */
function samplesOf(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[l[1] as string] = l[2] as string;
    out.push({ labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return out;
}

const matches = (labels: Record<string, string> | undefined, match: Record<string, string>) =>
  Object.entries(match).every(([k, v]) => labels?.[k] === v);

type Scrape = { text: string; families: Map<string, PromFamily> };

/**
 * The exporter writes a histogram's _count and _sum before its buckets (Prometheus accepts any order); the parser
 * wants them after (prom2json's order) and throws otherwise. Reorder each series for it.
 */
function bucketsFirst(text: string): string {
  const out: string[] = [];
  const groups = new Map<string, { buckets: string[]; rest: string[] }>();
  const flush = () => {
    for (const g of groups.values()) out.push(...g.buckets, ...g.rest);
    groups.clear();
  };
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)_(bucket|sum|count)(\{[^}]*\})? /.exec(line);
    if (m === null) {
      flush();
      out.push(line);
      continue;
    }
    const key = `${m[1]}${(m[3] ?? '').replace(/,?le="[^"]*"/, '').replace('{}', '')}`;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { buckets: [], rest: [] }));
    (m[2] === 'bucket' ? g.buckets : g.rest).push(line);
  }
  flush();
  return out.join('\n');
}

async function scrape(port: number): Promise<Scrape> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  const text = await res.text();
  return { text, families: new Map(parsePrometheusTextFormat(bucketsFirst(text)).map((f) => [f.name, f])) };
}

function family(families: Map<string, PromFamily>, name: string, type: PromFamily['type']): PromFamily {
  const f = families.get(name);
  if (f === undefined) throw new Error(`no metric family ${name}; have ${[...families.keys()].join(', ')}`);
  expect(f.type, name).toBe(type);
  return f;
}

/** Sum of a counter's or gauge's samples whose labels include `match`. */
function total(f: PromFamily, match: Record<string, string> = {}): number {
  expect(f.type).not.toBe('HISTOGRAM');
  return f.metrics.filter((m) => matches(m.labels, match)).reduce((n, m) => n + Number(m.value), 0);
}

/** A histogram's observation count (or `_sum`, or one bucket) over its series whose labels include `match`. */
function histogram(s: Scrape, name: string, match: Record<string, string> = {}, part: 'count' | 'sum' = 'count'): number {
  family(s.families, name, 'HISTOGRAM');
  return samplesOf(s.text, `${name}_${part}`)
    .filter((x) => matches(x.labels, match))
    .reduce((n, x) => n + x.value, 0);
}

/**
 * Prometheus conventions on every family: allot_ prefix (the process's own figures keep the client libraries' process_
 * and nodejs_ names, which dashboards expect), counters in _total, base units only.
 */
function checkNames(families: Map<string, PromFamily>): void {
  for (const [name, f] of families) {
    if (name === 'target_info') continue;
    expect(name).toMatch(/^(allot|process|nodejs)_[a-z0-9_]+$/);
    if (f.type === 'COUNTER') expect(name).toMatch(/_total$/);
    else expect(name).not.toMatch(/_total$/);
    expect(name).not.toMatch(/_(milliseconds|ms|mebibytes|mib|kilobytes|minutes)(_|$)/);
    if (name.includes('memory')) expect(name).toMatch(/_bytes$/);
    if (name.includes('duration')) expect(name).toMatch(/_seconds$/);
  }
}

const placeReq = (requestId: string, memoryMiB = VM_MIB): PlaceRequestInput => ({
  request: { requestId, tenantId: 'metrics', resources: { memoryMiB, vcpus: 1 } },
  placement: {},
});

describe('GET /metrics', () => {
  it('placements, a refusal and host usage show up on the coordinator and the agents', async () => {
    for (let i = 0; i < PLACED; i += 1) okValue(await cluster.sched('place', placeReq(`metrics-${i}`)), `place ${i}`);
    // No node has 64 GiB: refused at the coordinator.
    const refused = await cluster.sched('place', placeReq('metrics-too-big', 65_536));
    expect(refused.ok ? 'ok' : refused.error.code).toBe('insufficient_capacity');
    // And one refusal at an agent, asked directly.
    const agentRefused = await agentRequest(cluster.nc, 'm1', 'allocate', {
      requestId: 'metrics-agent-too-big',
      tenantId: 'metrics',
      resources: { memoryMiB: 65_536, vcpus: 1 },
    });
    expect(agentRefused.ok ? 'ok' : agentRefused.error.code).toBe('insufficient_capacity');

    // --- coordinator: gauges follow the usage stream, so wait until the view has caught up.
    let c = await scrape(coordinatorPort);
    await waitFor(
      async () => {
        c = await scrape(coordinatorPort);
        const committed = c.families.get('allot_cluster_memory_committed_bytes');
        return committed !== undefined && total(committed) === PLACED * VM_MIB * MIB;
      },
      { timeoutMs: 20_000, message: 'cluster committed memory in /metrics' },
    );
    checkNames(c.families);
    const placements = family(c.families, 'allot_placements_total', 'COUNTER');
    expect(total(placements, { outcome: 'ok' })).toBe(PLACED);
    expect(total(placements, { outcome: 'refused', reason: 'insufficient_capacity' })).toBe(1);
    expect(histogram(c, 'allot_placement_duration_seconds', { outcome: 'ok' })).toBe(PLACED);
    expect(histogram(c, 'allot_placement_duration_seconds')).toBe(PLACED + 1);
    expect(histogram(c, 'allot_placement_duration_seconds', { outcome: 'ok' }, 'sum')).toBeGreaterThan(0);
    const infBucket = samplesOf(c.text, 'allot_placement_duration_seconds_bucket').find(
      (x) => x.labels.outcome === 'ok' && x.labels.le === '+Inf',
    );
    expect(infBucket?.value).toBe(PLACED);
    expect(total(family(c.families, 'allot_cluster_nodes', 'GAUGE'), { liveness: 'ready' })).toBe(NODES.length);
    expect(total(family(c.families, 'allot_cluster_nodes', 'GAUGE'), { liveness: 'lost' })).toBe(0);
    expect(total(family(c.families, 'allot_cluster_nodes_by_health', 'GAUGE'), { status: 'healthy' })).toBe(NODES.length);
    expect(total(family(c.families, 'allot_cluster_memory_effective_bytes', 'GAUGE'))).toBe(NODES.length * 16_384 * MIB);
    expect(total(family(c.families, 'allot_cluster_vcpus_committed', 'GAUGE'))).toBe(PLACED);
    expect(total(family(c.families, 'allot_cluster_vcpus_effective', 'GAUGE'))).toBe(NODES.length * 64);
    family(c.families, 'allot_cluster_memory_used_bytes', 'GAUGE');
    family(c.families, 'allot_cluster_vcpus_used', 'GAUGE');
    const perNode = family(c.families, 'allot_node_memory_committed_bytes', 'GAUGE');
    expect(perNode.metrics.map((m) => m.labels?.node).sort()).toEqual(NODES);
    expect(total(perNode)).toBe(PLACED * VM_MIB * MIB);
    family(c.families, 'allot_node_vcpus_committed', 'GAUGE');
    family(c.families, 'allot_node_memory_effective_bytes', 'GAUGE');
    family(c.families, 'allot_node_memory_used_bytes', 'GAUGE');
    expect(total(family(c.families, 'allot_nats_reconnects_total', 'COUNTER'))).toBe(0);
    expect(c.text).toContain('service_name="allot-coordinator"');

    // --- agents: their own view of their host, read at scrape time.
    let allocatedOk = 0;
    let committedBytes = 0;
    let fsyncRecords = 0;
    let refusedAtAgents = 0;
    for (const nodeId of NODES) {
      const a = await scrape(agentPorts.get(nodeId) as number);
      checkNames(a.families);
      expect(a.text).toContain(`service_instance_id="${nodeId}"`);
      const committed = family(a.families, 'allot_host_memory_committed_bytes', 'GAUGE');
      expect(committed.metrics[0]?.labels?.node).toBe(nodeId);
      committedBytes += total(committed);
      expect(total(family(a.families, 'allot_host_memory_effective_bytes', 'GAUGE'))).toBe(16_384 * MIB);
      family(a.families, 'allot_host_memory_used_bytes', 'GAUGE');
      expect(total(family(a.families, 'allot_host_vcpus_effective', 'GAUGE'))).toBe(64);
      family(a.families, 'allot_host_vcpus_committed', 'GAUGE');
      family(a.families, 'allot_host_vcpus_used', 'GAUGE');
      expect(total(family(a.families, 'allot_host_health', 'GAUGE'), { status: 'healthy' })).toBe(1);
      expect(total(family(a.families, 'allot_host_cordoned', 'GAUGE'))).toBe(0);
      expect(total(family(a.families, 'allot_nats_reconnects_total', 'COUNTER'))).toBe(0);
      // A node given no placement has recorded no allocation yet: the families appear with their first sample.
      const allocations = a.families.get('allot_allocations_total');
      if (allocations !== undefined) {
        expect(allocations.type).toBe('COUNTER');
        // The host manager records allocate and reserve requests at its composite (resource="composite").
        allocatedOk += total(allocations, { outcome: 'ok' });
        refusedAtAgents += total(allocations, { outcome: 'refused' });
        expect(histogram(a, 'allot_allocation_duration_seconds')).toBeGreaterThan(0);
      }
      if (a.families.has('allot_ledger_fsync_duration_seconds')) {
        const fsyncs = histogram(a, 'allot_ledger_fsync_duration_seconds');
        expect(fsyncs).toBeGreaterThan(0);
        expect(histogram(a, 'allot_ledger_fsync_records')).toBe(fsyncs);
        fsyncRecords += histogram(a, 'allot_ledger_fsync_records', {}, 'sum');
      }
      const health = await fetch(`http://127.0.0.1:${agentPorts.get(nodeId)}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ nodeId, health: { status: 'healthy' }, cordoned: false });
    }
    expect(allocatedOk).toBe(PLACED);
    expect(refusedAtAgents).toBeGreaterThanOrEqual(1);
    expect(committedBytes).toBe(PLACED * VM_MIB * MIB);
    // Every allocation is one ledger record made durable by some fsync.
    expect(fsyncRecords).toBeGreaterThanOrEqual(PLACED);
  });

  it('answers 404 elsewhere on the agent; the coordinator serves /metrics and /healthz apart from the dashboard', async () => {
    const port = agentPorts.get('m1') as number;
    expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${coordinatorPort}/api/nodes`)).status).toBe(404);
    const health = await fetch(`http://127.0.0.1:${coordinatorPort}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ready' });
    expect((await fetch(`http://127.0.0.1:${dashboardPort}/api/nodes`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${dashboardPort}/metrics`)).status).toBe(404);
  });
});
