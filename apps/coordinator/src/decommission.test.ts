import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ReconcileConfigSchema } from './config.ts';
import { decommissionNode } from './decommission.ts';
import { NodeStates } from './node-states.ts';
import { Reconciler } from './reconciler.ts';
import { Sweep, SweepConfigSchema } from './sweep.ts';
import { inProcessCluster } from './testing/fake-agents.ts';

const logger = pino({ level: 'silent' });

/** One coordinator's parts over in-process fake agents, with the decommission records and the reconciler's nodeGone rule. */
async function setUp() {
  const cluster = inProcessCluster({ a: { memoryMiB: 8192, cores: 8 }, b: { memoryMiB: 8192, cores: 8 } });
  const c = await cluster.coordinator('c1', { place: { timeoutRetries: 0 } });
  const nodeStates = new NodeStates({
    bucket: cluster.bucket,
    clock: cluster.clock,
    coordinatorId: 'c1',
    logger,
    onChange: (n, r) => c.view.setDecommissioned(n, r),
  });
  await nodeStates.start();
  const agents = cluster.agents.caller();
  const reconciler = new Reconciler({
    store: c.store,
    agents,
    config: ReconcileConfigSchema.parse({ pendingOlderThanMs: 1_000 }),
    logger,
    clock: cluster.clock,
    nodeGone: (n) => nodeStates.decommissioned(n) !== undefined && (c.view.get(n)?.liveness ?? 'lost') === 'lost',
  });
  const deps = { nodeStates, view: c.view, store: c.store, agents, reconciler, logger, agentTimeoutMs: 100 };
  const placeOnA = (requestId: string) =>
    c.place({
      request: { requestId, tenantId: 't', resources: { memoryMiB: 1024, vcpus: 1 } },
      placement: { strategy: 'manual', nodeId: 'a' },
    });
  return { cluster, c, nodeStates, reconciler, deps, placeOnA };
}

describe('decommission', () => {
  it('leaves the placements of a node that is only suspect unsettled, and the reconciler fails its pending one once it is lost', async () => {
    const { cluster, c, reconciler, deps, placeOnA } = await setUp();
    expect((await placeOnA('placed-1')).ok).toBe(true);
    cluster.agents.nodes.get('a')!.loseReplies = 1;
    expect((await placeOnA('pending-1')).ok).toBe(false); // the reply is lost: timeout, pending and counted
    cluster.agents.setDown('a', true);
    cluster.clock.advance(5_000);
    c.view.sweep();
    expect(c.view.get('a')?.liveness).toBe('suspect');

    const d = await decommissionNode(deps, { nodeId: 'a', requestId: 'd1' });
    if (!d.ok) throw new Error(d.error.message);
    expect(d.value).toMatchObject({
      answered: false,
      liveness: 'suspect',
      failed: [],
      gone: [],
      unsettled: ['pending-1'],
      remainingCount: 1,
      removed: false,
    });
    expect(d.value.remaining.map((a) => a.requestId)).toEqual(['placed-1']);
    expect(c.view.get('a')?.state).toBe('decommissioned');
    expect(c.view.usage(0).nodes).toMatchObject({ total: 2, decommissioned: 1 });

    // Lost now: the reconciler's round fails the pending intent (quota back) without waiting for the node.
    expect((await reconciler.reconcileOnce()).outcomes).toEqual({}); // it starts following the intents: too young yet
    cluster.clock.advance(60_000);
    c.view.sweep();
    const round = await reconciler.reconcileOnce();
    expect(round.outcomes).toEqual({ 'pending-1': 'failed' });
    const failed = await c.store.get('pending-1');
    expect(failed.ok && failed.value?.value).toMatchObject({ state: 'failed', error: { details: { reason: 'node_decommissioned' } } });
    // The placement on it stays counted until decommission is run again on the lost node, whose reply also names the
    // pending placement the reconciler failed on the decommission's word.
    const again = await decommissionNode(deps, { nodeId: 'a', requestId: 'd2' });
    expect(again.ok && again.value).toMatchObject({ failed: ['pending-1'], gone: ['placed-1'], unsettled: [], removed: true });
    expect(c.view.get('a')).toBeUndefined();
    const usage = await c.store.usage('t');
    expect(usage.ok && usage.value?.value.usage).toMatchObject({ vms: 0, vcpus: 0, memoryMiB: 0 });
  });

  it('fences the pending placement of a node that answers: committed there, it is placed, listed, and the node cordoned', async () => {
    const { cluster, c, deps, placeOnA } = await setUp();
    cluster.agents.nodes.get('a')!.loseReplies = 1;
    expect((await placeOnA('committed-1')).ok).toBe(false); // committed on a, reply lost: timeout, pending
    const d = await decommissionNode(deps, { nodeId: 'a', requestId: 'd1' });
    if (!d.ok) throw new Error(d.error.message);
    expect(d.value).toMatchObject({
      answered: true,
      failed: [],
      placed: ['committed-1'],
      unsettled: [],
      remainingCount: 1,
      removed: false,
    });
    expect(cluster.agents.nodes.get('a')!.cordoned).toBe(true);
    const intent = await c.store.get('committed-1');
    expect(intent.ok && intent.value?.value.state).toBe('placed');
  });

  it('answers a retry with what the first call did: an operator whose reply was lost learns which placements were failed and given up', async () => {
    const { cluster, c, deps, placeOnA } = await setUp();
    expect((await placeOnA('placed-1')).ok).toBe(true);
    cluster.agents.nodes.get('a')!.loseReplies = 1;
    expect((await placeOnA('pending-1')).ok).toBe(false); // pending on a
    cluster.agents.setDown('a', true);
    cluster.clock.advance(120_000);
    c.view.sweep();
    const first = await decommissionNode(deps, { nodeId: 'a', requestId: 'd1', reason: 'psu' });
    if (!first.ok) throw new Error(first.error.message);
    expect(first.value).toMatchObject({ failed: ['pending-1'], gone: ['placed-1'], removed: true });

    // The reply was lost: the operator runs it again, with the same request id or a new one.
    for (const requestId of ['d1', 'd2']) {
      const again = await decommissionNode(deps, { nodeId: 'a', requestId });
      if (!again.ok) throw new Error(again.error.message);
      // All of it but the liveness: a removed node is out of the view, so none is reported.
      const { liveness: _, ...rest } = first.value;
      expect(again.value).toEqual(rest);
    }
    // Nothing was given back twice.
    const usage = await c.store.usage('t');
    expect(usage.ok && usage.value?.value.usage).toMatchObject({ vms: 0, vcpus: 0, memoryMiB: 0 });
  });

  it('names what a concurrent round gave up: two decommissions of a lost node running at once both answer it', async () => {
    const { cluster, c, deps, placeOnA } = await setUp();
    expect((await placeOnA('placed-1')).ok).toBe(true);
    expect((await placeOnA('placed-2')).ok).toBe(true);
    cluster.agents.setDown('a', true);
    cluster.clock.advance(120_000);
    c.view.sweep();
    // The operator's first run timed out on the client while its coordinator went on; the second started meanwhile.
    const [first, second] = await Promise.all([
      decommissionNode(deps, { nodeId: 'a', requestId: 'd1' }),
      decommissionNode(deps, { nodeId: 'a', requestId: 'd2' }),
    ]);
    for (const d of [first, second]) expect(d.ok && d.value).toMatchObject({ gone: ['placed-1', 'placed-2'], removed: true });
  });

  it('fails on the operator word a placement a lost node had committed; when the node comes back, the sweep releases that stray', async () => {
    const { cluster, c, nodeStates, deps, placeOnA } = await setUp();
    cluster.agents.nodes.get('a')!.loseReplies = 1;
    expect((await placeOnA('late-1')).ok).toBe(false); // journaled on a before it went silent: nobody knows
    cluster.agents.setDown('a', true);
    cluster.clock.advance(120_000);
    c.view.sweep();
    const d = await decommissionNode(deps, { nodeId: 'a', requestId: 'd1' });
    expect(d.ok && d.value).toMatchObject({ answered: false, liveness: 'lost', failed: ['late-1'], removed: true });
    expect(cluster.agents.live('a').map((x) => x.requestId)).toEqual(['late-1']); // what the statement costs

    // a comes back: refused by the view, its stray found by the sweep as an orphan of a failed intent and released.
    cluster.agents.setDown('a', false);
    c.refresh();
    expect(c.view.get('a')).toBeUndefined();
    const sweep = new Sweep({
      store: c.store,
      agents: cluster.agents.caller(),
      nodes: () => [...c.view.nodes({ liveness: 'ready' }).map((n) => n.nodeId), ...c.view.refusedNodesHeard(15_000)],
      clock: cluster.clock,
      config: SweepConfigSchema.parse({ graceMs: 1_000 }),
      logger,
    });
    const first = await sweep.sweepOnce();
    expect(first.ok && first.value.discrepancies).toEqual([
      expect.objectContaining({ kind: 'orphan', nodeId: 'a', requestId: 'late-1', reason: 'intent_failed' }),
    ]);
    cluster.clock.advance(2_000);
    const second = await sweep.sweepOnce();
    expect(second.ok && second.value.released).toBe(1);
    expect(cluster.agents.live('a')).toEqual([]);
    expect(nodeStates.decommissioned('a')?.removedAt).toBeDefined();
  });
});
