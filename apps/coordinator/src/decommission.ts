import { MAX_DECOMMISSION_LISTED, MAX_DRAIN_LISTED, type AllotEvent, type DecommissionReply } from '@allot/protocol';
import { ok, type Allocation, type Result } from '@allot/core';
import type { Logger } from 'pino';
import type { AgentCaller } from './agents.ts';
import { forEachAllocationPage } from './allocation-pages.ts';
import { counts, type PlacementIntent } from './intents.ts';
import type { IntentStore, StoredIntent } from './intents/intent-store.ts';
import { endPlacement } from './moves/move.ts';
import type { NodeStates } from './node-states.ts';
import type { Reconciler } from './reconciler.ts';
import type { ClusterView } from './view.ts';

/**
 * `allot node decommission X`: the operator says X is out for good.
 *
 * 1. The record (node-states.ts) is written first: from then on every coordinator shows X decommissioned, cordoned in
 *    its view (placement never offers it), and its reconciler may fail a pending intent X does not answer for.
 * 2. X's agent is cordoned, so it refuses any allocate it still gets (and journals why).
 * 3. Each counting intent naming X is settled. Pending ones go through the reconciler (one owner of that step): fenced
 *    on X when X answers (held -> placed, nothing -> failed, ended -> released), and failed WITHOUT a fence when X is
 *    lost and silent. Placed ones stay while X answers or may still answer; when X is lost they are released (cause
 *    `decommission`): the quota is given back.
 * 4. What remains is listed; when nothing does, X is marked removed: out of the view and every count, and a later
 *    snapshot of X is refused.
 *
 * Why failing without the fence is the operator's call, and what it costs. A fence is recorded by the agent itself: a
 * silent X cannot be made to refuse a late allocate, and nothing outside X proves that an allocate at the intent's
 * attempt was not journaled on X before it went silent. Core NATS keeps no message for a subscriber that is gone, so
 * nothing new reaches a dead X; the risk is what X journaled before (a reply that never arrived). Like Nova and
 * Placement, which take a dead host's allocations as gone once the operator forces the host down, allot takes
 * decommissioning a lost node as that statement: the operator must know the host is off (powered down, fenced) before
 * saying so. Should X come back all the same, it is refused (its snapshots dropped, its agent cordoned with the reason)
 * and whatever it still holds for these requests is an orphan of the sweep (intent failed, released, or taken over on
 * another node at a higher attempt), released with the intent's attempt as fence. Until the sweep's grace has run, such
 * a request may have an allocation on X and one elsewhere: only when the operator's statement was wrong.
 * A node that is silent but not yet lost (suspect) is not given up: its pending intents are reported `unsettled` and
 * its placements `remaining`; decommission can be run again once it is lost (the reconciler also fails them then).
 *
 * Run again (a retry whose reply was lost, on any coordinator, with any request id), it answers what every round did:
 * `failed` and `gone` are read back from the intents themselves (failed on the decommission's word, released with
 * cause `decommission`), kept for the coordinators' intentTtlMs, so the operator learns the outcome from the same
 * command rather than from the events. Unlike Placement, whose second DELETE of a resource provider is a 404, the
 * second decommission succeeds: its answer is the one the operator lost.
 */
export interface DecommissionDeps {
  readonly nodeStates: NodeStates;
  readonly view: ClusterView;
  readonly store: IntentStore;
  readonly agents: AgentCaller;
  readonly reconciler: Reconciler;
  readonly logger: Logger;
  /** Wait for the node's agent this long when asking whether it answers (cordon). */
  readonly agentTimeoutMs: number;
  readonly publishEvent?: (event: AllotEvent, msgId: string) => void;
}

/** The text the node's agent journals and logs with its cordon: what happened and how to undo it. */
export function decommissionCordonReason(nodeId: string, reason: string | undefined): string {
  const why = reason === undefined || reason === '' ? '' : `: ${reason}`;
  return `decommissioned${why}; the coordinators refuse this node's usage and events and release its placements; run "allot node recommission ${nodeId}" to take it back`.slice(
    0,
    256,
  );
}

function push(list: string[], requestId: string): void {
  if (list.length < MAX_DECOMMISSION_LISTED) list.push(requestId);
}

export async function decommissionNode(
  d: DecommissionDeps,
  request: { nodeId: string; requestId: string; reason?: string | undefined },
): Promise<Result<DecommissionReply>> {
  const { nodeId } = request;
  const record = await d.nodeStates.decommission(nodeId, request.requestId, request.reason);
  if (!record.ok) return record;
  d.view.setDecommissioned(nodeId, record.value);

  const cordon = await d.agents.call(
    nodeId,
    'cordon',
    { requestId: `decommission:${nodeId}:${record.value.at}`, reason: decommissionCordonReason(nodeId, record.value.reason) },
    { timeoutMs: d.agentTimeoutMs },
  );
  const answered = cordon.ok;
  const liveness = d.view.get(nodeId)?.liveness;
  // Never reported to this coordinator (or forgotten long ago) counts as lost: nothing of it is in reach.
  const lost = !answered && (liveness === undefined || liveness === 'lost');

  const failed: string[] = [];
  const placed: string[] = [];
  const gone: string[] = [];
  const unsettled: string[] = [];
  const scanned = await d.store.scan();
  if (!scanned.ok) return scanned;
  const leftPlaced: StoredIntent[] = [];
  for (const found of scanned.value) {
    if (found.value.nodeId !== nodeId) continue;
    if (!counts(found.value.state)) {
      const earlier = endedByDecommission(found.value);
      if (earlier !== undefined) push(earlier === 'failed' ? failed : gone, found.value.requestId);
      continue;
    }
    const outcome = await settle(d, found, lost);
    if (outcome === 'failed') push(failed, found.value.requestId);
    else if (outcome === 'placed') push(placed, found.value.requestId);
    else if (outcome === 'gone') push(gone, found.value.requestId);
    else if (outcome === 'unsettled') push(unsettled, found.value.requestId);
    if (outcome === 'placed' || outcome === 'kept') {
      const fresh = await d.store.get(found.value.requestId);
      if (fresh.ok && fresh.value !== null && fresh.value.value.state === 'placed') leftPlaced.push(fresh.value);
    }
  }

  // What remains: the agent's own list when it answers; otherwise the placements still counted on it.
  let remaining: Allocation[] = [];
  let remainingCount = 0;
  if (answered) {
    const walked = await forEachAllocationPage(
      d.agents,
      nodeId,
      { status: 'live' },
      (page) => void remaining.push(...page.slice(0, MAX_DRAIN_LISTED - remaining.length)),
    );
    if (walked.ok) remainingCount = walked.value.count;
    else {
      remaining = leftPlaced.flatMap((i) => (i.value.reply === undefined ? [] : [i.value.reply.allocation])).slice(0, MAX_DRAIN_LISTED);
      remainingCount = leftPlaced.length;
    }
  } else if (!lost) {
    remaining = leftPlaced.flatMap((i) => (i.value.reply === undefined ? [] : [i.value.reply.allocation])).slice(0, MAX_DRAIN_LISTED);
    remainingCount = leftPlaced.length;
  }

  const removed = remainingCount === 0 && unsettled.length === 0 && leftPlaced.length === 0;
  if (removed) {
    const marked = await d.nodeStates.markRemoved(nodeId);
    if (marked.ok && marked.value !== undefined) d.view.setDecommissioned(nodeId, marked.value);
  }
  d.logger.warn(
    {
      node: nodeId,
      answered,
      liveness,
      failed: failed.length,
      placed: placed.length,
      gone: gone.length,
      unsettled: unsettled.length,
      remainingCount,
      removed,
    },
    'node decommissioned',
  );
  d.publishEvent?.(
    {
      kind: 'node_decommissioned',
      nodeId,
      at: record.value.at,
      reason: `${record.value.reason ?? 'decommissioned'}; failed ${failed.length}, gone ${gone.length}, remaining ${remainingCount}`,
    },
    `node_decommissioned:${nodeId}:${record.value.at}:${request.requestId}`,
  );
  return ok({
    nodeId,
    decommissionedAt: record.value.at,
    answered,
    ...(liveness === undefined ? {} : { liveness }),
    failed: failed.sort(),
    placed: placed.sort(),
    gone: gone.sort(),
    unsettled: unsettled.sort(),
    remaining,
    remainingCount,
    removed,
  });
}

type Outcome = 'failed' | 'placed' | 'gone' | 'kept' | 'unsettled' | 'ended';

/** How an earlier decommission of the node ended this intent (the reconciler's failure on its word included), if it did. */
function endedByDecommission(intent: PlacementIntent): 'failed' | 'gone' | undefined {
  if (intent.state === 'released' && intent.releasedBy === 'decommission') return 'gone';
  if (intent.state === 'failed' && intent.error?.details?.['reason'] === 'node_decommissioned') return 'failed';
  return undefined;
}

/** One counting intent on the node, re-read and settled again when a retry moved it meanwhile (a few rounds). */
async function settle(d: DecommissionDeps, found: StoredIntent, lost: boolean): Promise<Outcome> {
  let at = found;
  for (let round = 0; round < 4; round++) {
    if (at.value.nodeId !== found.value.nodeId) return 'ended';
    // Ended meanwhile: perhaps by a concurrent round of this decommission (a retry whose first run is still going on).
    if (!counts(at.value.state)) return endedByDecommission(at.value) ?? 'ended';
    if (at.value.state === 'placed') {
      if (!lost) return 'kept';
      const written = await endPlacement(d.store, at, 'decommission'); // a moving source hands its destination the count
      if (written.ok) {
        d.logger.warn(
          { requestId: at.value.requestId, tenant: at.value.tenantId, node: at.value.nodeId },
          'placement given up with its decommissioned lost node; quota given back',
        );
        return 'gone';
      }
    } else {
      const outcome = await d.reconciler.settleNow(at);
      if (outcome === 'failed') return 'failed';
      if (outcome === 'placed') return 'placed';
      if (outcome === 'released') return 'ended';
      if (outcome === 'left') return 'unsettled';
    }
    const fresh = await d.store.get(at.value.requestId);
    if (!fresh.ok || fresh.value === null) return 'unsettled';
    at = fresh.value;
  }
  return 'unsettled';
}

/** `allot node recommission X`: the record goes (every coordinator takes X's snapshots again); X stays cordoned. */
export async function recommissionNode(
  d: Pick<DecommissionDeps, 'nodeStates' | 'view' | 'logger' | 'publishEvent'>,
  request: { nodeId: string; requestId: string; reason?: string | undefined },
): Promise<Result<{ nodeId: string; wasDecommissioned: boolean }>> {
  const was = await d.nodeStates.recommission(request.nodeId, request.requestId, request.reason);
  if (!was.ok) return was;
  d.view.setDecommissioned(request.nodeId, undefined);
  if (was.value) {
    d.logger.warn({ node: request.nodeId }, 'node recommissioned');
    d.publishEvent?.(
      {
        kind: 'node_recommissioned',
        nodeId: request.nodeId,
        at: Date.now(),
        ...(request.reason === undefined ? {} : { reason: request.reason }),
      },
      `node_recommissioned:${request.nodeId}:${request.requestId}`,
    );
  }
  return ok({ nodeId: request.nodeId, wasDecommissioned: was.value });
}
