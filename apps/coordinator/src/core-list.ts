import type { NodeView } from '@allot/core';
import type { AgentCaller } from './agents.ts';
import type { ClusterView } from './view.ts';

/** How long a reader waits for an agent's per-core list before answering without it. */
const CORE_LIST_TIMEOUT_MS = 1_000;

/**
 * A node's view for a reader that shows its cores (`allot node`, the dashboard's node detail). The view may hold no
 * per-core list: heartbeats leave it out, and a coordinator that started since the agent last sent it has not seen it
 * (docs/architecture.md, "Heartbeats"). Then the node's agent is asked for its usage (the full snapshot) and the view
 * keeps the list when it is the layout the view's snapshot names; without an answer in time the view is read as it is.
 */
export async function withCoreList(view: ClusterView, agents: AgentCaller, nodeId: string): Promise<NodeView | undefined> {
  const v = view.get(nodeId);
  if (v === undefined || v.snapshot.cpu.cores.length > 0 || v.snapshot.cpu.coresDigest === undefined) return v;
  const full = await agents.call(nodeId, 'usage', {}, { timeoutMs: CORE_LIST_TIMEOUT_MS });
  if (full.ok) view.attachCores(nodeId, full.value);
  return view.get(nodeId);
}
