import type { Result } from '@allot/core';
import { PlaceBatchRequestSchema, type PlaceBatchReply } from '@allot/protocol';
import type { AgentCaller } from '../../apps/coordinator/src/agents.ts';
import { counts } from '../../apps/coordinator/src/intents.ts';
import type { IntentStore } from '../../apps/coordinator/src/intents/intent-store.ts';
import { marksBatchFailure, placeBatch } from '../../apps/coordinator/src/place-batch.ts';
import type { PlaceFlow } from '../../apps/coordinator/src/place-flow.ts';
import type { ClusterView } from '../../apps/coordinator/src/view.ts';
import { seededRandom, type RandomSource } from '../../packages/placement/src/random.ts';
import type { SimAgent } from './agent.ts';
import type { Scheduler } from './scheduler.ts';

/*
 * Batches at the cluster layer (`--batches`, docs/simulation.md "Batches"): clients also place gangs of 2 to 4 VMs all or
 * nothing through place.batch, retry an unknown answer a few times and then sometimes walk away (the crash case: its
 * coordinator may die mid-batch, and nothing retries). Once settled, every batch is whole or gone: no member counted
 * beside a failed one, none live on a disk beside a rolled-back one, an acknowledged batch never rolled back. Whether a
 * client's turn is a batch is drawn from the batches' own stream, so a run without the flag replays as before.
 */

/** The coordinator parts a batch is placed through (the cluster layer's SimCoordinator). */
export interface BatchCoordinator {
  readonly flow: PlaceFlow | undefined;
  readonly view: ClusterView | undefined;
  readonly intents: IntentStore | undefined;
  readonly moves: { readonly agents: AgentCaller } | undefined;
}

/** What the cluster layer hands the batch clients (its closures). */
export interface BatchHost {
  readonly sched: Scheduler;
  readonly agents: ReadonlyMap<string, SimAgent>;
  readonly ask: <T>(fn: (c: BatchCoordinator) => Promise<Result<T>>, label: string) => Promise<Result<T> | 'timeout'>;
  readonly retryable: (code: string) => boolean;
  readonly nextId: () => number;
  /** The host lost for good: its members may end with it (given up by the decommission). */
  readonly lostNode: string | undefined;
}

/** One batch a client sent, and the last answer it heard. */
interface SentBatch {
  readonly batchId: string;
  readonly members: readonly string[];
  answer: 'ok' | 'refused' | 'unknown';
  code?: string;
}

export class BatchClients {
  readonly random: RandomSource;
  /** The share of a client's turns that send a batch. */
  readonly share: number;
  readonly #h: BatchHost;
  readonly #sent: SentBatch[] = [];

  constructor(seed: number, host: BatchHost) {
    this.random = seededRandom((seed * 3_266_489_917 + 0x62617463) >>> 0);
    this.share = 0.1 + this.random() * 0.2;
    this.#h = host;
  }

  describe(): string {
    return `batches: ${Math.round(this.share * 100)}% of client turns send a batch`;
  }

  async turn(client: number): Promise<void> {
    const { sched } = this.#h;
    const id = this.#h.nextId();
    const size = 2 + Math.floor(this.random() * 3);
    const tenantId = `t${1 + Math.floor(this.random() * 3)}`;
    const batchId = `c${client}-b${id}`;
    const req = PlaceBatchRequestSchema.parse({
      batchId,
      tenantId,
      members: Array.from({ length: size }, (_, i) => ({
        requestId: `${batchId}-m${i}`,
        tenantId,
        resources: { memoryMiB: 512 * (1 + Math.floor(this.random() * 4)), vcpus: 1 + Math.floor(this.random() * 2) },
      })),
      ...(this.random() < 0.5 ? { maxPerNode: 1 + Math.floor(this.random() * 2) } : {}),
    });
    const sent: SentBatch = { batchId, members: req.members.map((m) => m.requestId), answer: 'unknown' };
    this.#sent.push(sent);
    for (let attempt = 1; attempt <= 4; attempt++) {
      const reply = await this.#h.ask<PlaceBatchReply>((c) => {
        const { flow, view, intents, moves } = c;
        if (flow === undefined || view === undefined || intents === undefined || moves === undefined)
          return Promise.resolve({ ok: false, error: { code: 'unavailable', message: 'coordinator down' } });
        return placeBatch({ flow, view, store: intents, agents: moves.agents }, structuredClone(req));
      }, `batch ${batchId}`);
      if (reply !== 'timeout' && reply.ok) {
        sent.answer = 'ok';
        return;
      }
      if (reply !== 'timeout' && !this.#h.retryable(reply.error.code)) {
        sent.answer = 'refused';
        sent.code = reply.error.code;
        return;
      }
      // Unknown: retried, or (half the time) walked away from, leaving it to the reconcilers.
      if (this.random() < 0.5) {
        sched.trace(`batch ${batchId}: the client walks away after attempt ${attempt}`);
        return;
      }
    }
  }

  /** Once settled: every batch whole or gone, and an acknowledged batch never rolled back. */
  async checkSettled(store: IntentStore): Promise<void> {
    const { sched } = this.#h;
    const scanned = await sched.settle(store.scan(), 'scan for batches');
    if (!scanned.ok) {
      sched.fail(`batches: intents unreadable once settled: ${scanned.error.message}`);
      return;
    }
    const intents = new Map(scanned.value.map((at) => [at.value.requestId, at.value]));
    const live = new Set<string>();
    for (const agent of this.#h.agents.values())
      if (agent.nodeId !== this.#h.lostNode) for (const a of agent.model.live()) live.add(a.requestId);
    let whole = 0;
    let gone = 0;
    // Members that moved on to another candidate after their node refused them (place-batch.ts, driveMovingOn).
    let movedOn = 0;
    for (const b of this.#sent) {
      const members = b.members.map((id) => intents.get(id));
      const failed = members.filter((i) => i !== undefined && marksBatchFailure(i));
      const counted = members.filter((i) => i !== undefined && counts(i.state));
      const what = `batch ${b.batchId} (${b.answer}${b.code === undefined ? '' : ` ${b.code}`})`;
      if (failed.length > 0) {
        gone++;
        if (counted.length > 0)
          sched.fail(
            `${what}: member ${failed[0]?.requestId} failed and ${counted.map((i) => i?.requestId).join(', ')} still counted once settled`,
          );
        const onDisk = b.members.filter((id) => live.has(id));
        if (onDisk.length > 0) sched.fail(`${what} failed and ${onDisk.join(', ')} still live on disk once settled`);
        if (b.answer === 'ok') sched.fail(`${what} was acknowledged and then rolled back`);
      } else if (counted.length > 0) {
        whole++;
        const moved = members.filter((i) => i !== undefined && i.refusedBy.length > 0);
        movedOn += moved.length;
        for (const i of moved)
          sched.trace(`${what}: member ${i?.requestId} placed on ${i?.nodeId} after ${i?.refusedBy.join(', ')} refused it`);
      }
      if (counted.some((i) => i?.state === 'pending')) sched.fail(`${what}: a member still pending once settled`);
    }
    sched.trace(`batches: ${this.#sent.length} sent, ${whole} standing (${movedOn} members moved on after a refusal), ${gone} rolled back`);
  }
}
