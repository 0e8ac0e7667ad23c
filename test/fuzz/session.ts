import { isDeepStrictEqual } from 'node:util';
import { startLocalCluster, type LocalCluster, type ProcessHandle } from '../harness/index.ts';
import { fuzz, type FuzzOptions, type FuzzReport } from './run.ts';
import { captureState, type ClusterState } from './state.ts';

export interface FuzzVerdict {
  readonly report: FuzzReport;
  readonly before: ClusterState;
  readonly after: ClusterState;
  readonly stateUnchanged: boolean;
  /** Processes that exited during the run (name and exit). */
  readonly exited: string[];
  /** Each process still answers after the run. */
  readonly stillServing: boolean;
}

/** A real cluster: nats-server, two agents, one coordinator, with some real placements the fuzzer must not touch. */
export async function startFuzzCluster(): Promise<LocalCluster> {
  const cluster = await startLocalCluster({
    agents: [
      { nodeId: 'fz1', simulatedHost: { cores: 16, memoryMiB: 65_536 }, labels: { zone: 'a' } },
      { nodeId: 'fz2', simulatedHost: { cores: 8, memoryMiB: 32_768 }, labels: { zone: 'b' } },
    ],
    coordinatorConfig: { http: { host: '127.0.0.1', port: 0 } },
  });
  const quota = await cluster.sched('quota.set', { requestId: 'real-quota', quota: { tenantId: 'real', limits: { vms: 10 } } });
  if (!quota.ok) throw new Error(`quota.set: ${quota.error.message}`);
  for (let i = 0; i < 3; i++) {
    const placed = await cluster.sched('place', {
      request: { requestId: `real-${i}`, tenantId: 'real', resources: { memoryMiB: 2048, vcpus: 2 } },
      placement: {},
    });
    if (!placed.ok) throw new Error(`place real-${i}: ${placed.error.message}`);
  }
  return cluster;
}

function watchExits(processes: ProcessHandle[]): string[] {
  const exited: string[] = [];
  for (const p of processes) void p.exited.then((e) => exited.push(`${p.name} exited (code ${e.code}, signal ${e.signal})`));
  return exited;
}

/** Captures state, fuzzes, lets the stream consumers catch up, captures again and checks every process. */
export async function fuzzCluster(cluster: LocalCluster, options: FuzzOptions): Promise<FuzzVerdict> {
  const exited = watchExits([...cluster.agents.values(), ...cluster.coordinators]);
  const before = await captureState(cluster);
  const report = await fuzz(cluster, options);
  // The consumers (usage feed, quota events, dashboard feed) see the stream messages shortly after.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  let stillServing = true;
  let after: ClusterState;
  try {
    after = await captureState(cluster);
  } catch (e) {
    stillServing = false;
    after = { agents: {}, placementsLastSeq: -1, placementsMessages: -1, nodes: [`capture failed: ${(e as Error).message}`] };
  }
  return { report, before, after, stateUnchanged: isDeepStrictEqual(before, after), exited, stillServing };
}

/** One paragraph for a person: rate, replies, findings. */
export function describeVerdict(v: FuzzVerdict): string {
  const r = v.report;
  const lines = [
    `fuzz: ${r.sent} messages in ${(r.elapsedMs / 1000).toFixed(1)} s = ${r.messagesPerSecond} messages/s (${r.requests} requests, ${r.published} stream publications, ${r.skippedValid} valid mutations not sent)`,
    `replies: ${r.replies.ok} ok, errors ${JSON.stringify(r.replies.errors)}`,
    `findings: ${Object.keys(r.findingCounts).length === 0 ? 'none' : JSON.stringify(r.findingCounts)}`,
    ...r.findings.slice(0, 10).map((f) => `  ${f.kind} ${f.subject} (${f.shape}): ${f.detail}`),
    `state unchanged: ${v.stateUnchanged}; processes exited: ${v.exited.length === 0 ? 'none' : v.exited.join('; ')}; still serving: ${v.stillServing}`,
  ];
  if (!v.stateUnchanged) lines.push(`before: ${JSON.stringify(v.before)}`, `after:  ${JSON.stringify(v.after)}`);
  return lines.join('\n');
}
