import { coreListLength, type NodeView } from '@allot/core';
import type { AgentCaller } from './agents.ts';
import type { ClusterView } from './view.ts';

/** How long a reader waits for an agent's per-core list before answering without it. */
const CORE_LIST_TIMEOUT_MS = 1_000;
/** After an ask that brought no list, reads of that node answer as they are this long: reads never flood its agent. */
const ASK_AGAIN_AFTER_MS = 1_000;
/** Asks remembered per coordinator before the finished ones are forgotten (one per node read lately). */
const MAX_REMEMBERED_ASKS = 1_024;

/** One ask of a node's agent: in flight (`finishedAt` undefined) or finished then (monotonic ms). */
interface Ask {
  done: Promise<void>;
  finishedAt?: number;
}

/** Per view (one coordinator), the last ask of each node's agent. */
const asks = new WeakMap<ClusterView, Map<string, Ask>>();

/**
 * A node's view for a reader that shows its cores (`allot node`, the dashboard's node detail). The view may hold no
 * per-core list: heartbeats leave it out, and a coordinator that started since the agent last sent it has not seen it
 * (docs/architecture.md, "Heartbeats"). Then the node's agent is asked for its usage (the full snapshot) and the view
 * keeps the list when it is the layout the view's snapshot names; without an answer in time the view is read as it is.
 * Reads at once share one ask, and for ASK_AGAIN_AFTER_MS after an ask that brought no list none is sent.
 */
export async function withCoreList(view: ClusterView, agents: AgentCaller, nodeId: string): Promise<NodeView | undefined> {
  const v = view.get(nodeId);
  if (v === undefined || coreListLength(v.snapshot.cpu) > 0 || v.snapshot.cpu.coresDigest === undefined) return v;
  const byNode = asks.get(view) ?? new Map<string, Ask>();
  asks.set(view, byNode);
  const now = performance.now();
  const last = byNode.get(nodeId);
  if (last !== undefined && (last.finishedAt === undefined || now - last.finishedAt < ASK_AGAIN_AFTER_MS)) {
    await last.done;
    return view.get(nodeId);
  }
  if (byNode.size >= MAX_REMEMBERED_ASKS)
    for (const [id, ask] of byNode) if (ask.finishedAt !== undefined && now - ask.finishedAt >= ASK_AGAIN_AFTER_MS) byNode.delete(id);
  const ask: Ask = { done: Promise.resolve() };
  ask.done = (async () => {
    try {
      const full = await agents.call(nodeId, 'usage', {}, { timeoutMs: CORE_LIST_TIMEOUT_MS });
      if (full.ok) view.attachCores(nodeId, full.value);
    } finally {
      ask.finishedAt = performance.now();
    }
  })();
  byNode.set(nodeId, ask);
  await ask.done;
  return view.get(nodeId);
}
