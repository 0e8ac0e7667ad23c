import { AGENT_ENDPOINTS, agentSubject, KV_PLACEMENTS } from '@allot/protocol';
import type { Result } from '@allot/core';
import { requestTyped } from '@allot/nats';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { LocalCluster } from '../harness/index.ts';

/** What must not change under fuzzing: each agent's ledger seq and allocations, the intents and usage records, the view's nodes. */
export interface ClusterState {
  readonly agents: Record<string, { seq: number; allocations: string[] }>;
  /** The last sequence of the KV stream holding intents and usage records (with quotas): any write moves it. */
  readonly placementsLastSeq: number;
  readonly placementsMessages: number;
  readonly nodes: string[];
}

function value<T>(r: Result<T>, what: string): T {
  if (!r.ok) throw new Error(`${what}: ${r.error.code}: ${r.error.message}`);
  return r.value;
}

async function agentState(nc: NatsConnection, nodeId: string): Promise<{ seq: number; allocations: string[] }> {
  const usage = value(
    await requestTyped(nc, agentSubject(nodeId, 'usage'), {}, AGENT_ENDPOINTS.usage.reply, { timeoutMs: 10_000 }),
    `${nodeId} usage`,
  );
  const allocations: string[] = [];
  let after: number | undefined;
  for (;;) {
    const page = value(
      await requestTyped(
        nc,
        agentSubject(nodeId, 'allocations'),
        { status: 'all', limit: 1_000, ...(after === undefined ? {} : { after }) },
        AGENT_ENDPOINTS.allocations.reply,
        { timeoutMs: 10_000 },
      ),
      `${nodeId} allocations`,
    );
    for (const a of page.allocations) allocations.push(`${a.id} ${a.requestId} ${a.status} ${a.updatedAt} ${a.fence ?? '-'}`);
    if (!page.truncated || page.next === undefined) break;
    after = page.next;
  }
  return { seq: usage.seq, allocations: allocations.sort() };
}

export async function captureState(cluster: LocalCluster): Promise<ClusterState> {
  const agents: ClusterState['agents'] = {};
  for (const nodeId of [...cluster.agents.keys()].sort()) agents[nodeId] = await agentState(cluster.nc, nodeId);
  const info = await (await jetstreamManager(cluster.nc)).streams.info(`KV_${KV_PLACEMENTS}`);
  const nodes = value(await cluster.sched('nodes', {}), 'nodes')
    .nodes.map((n) => n.nodeId)
    .sort();
  return { agents, placementsLastSeq: info.state.last_seq, placementsMessages: info.state.messages, nodes };
}
