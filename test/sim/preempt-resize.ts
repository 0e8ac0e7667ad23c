import { PREEMPTION_PRIORITY_GAP, type Allocation, type Result } from '@allot/core';
import { PlaceRequestSchema, type PlaceReply } from '@allot/protocol';
import type { PlaceFlow } from '../../apps/coordinator/src/place-flow.ts';
import { resizeAllocation, type ResizeDeps } from '../../apps/coordinator/src/resize.ts';
import type { HostRecord } from '../../packages/managers/src/index.ts';
import { seededRandom, type RandomSource } from '../../packages/placement/src/random.ts';
import type { SimAgent } from './agent.ts';
import { sleep } from './agent-layer.ts';
import type { MoveBook } from './moves.ts';
import type { Scheduler } from './scheduler.ts';

/*
 * The lifecycle verbs at the cluster layer (`--lifecycle`, docs/simulation.md "Preemption and resize"): clients also
 * place with a priority that may preempt lower-priority VMs of any tenant (sometimes with a grace period), and grow or
 * shrink their active VMs in place through the coordinators' resize (the reconciler settling held growths). Whether a
 * client's turn is one of these is drawn from the lifecycle's own stream, so a run without the flag replays as before.
 */

/** What the cluster layer hands the lifecycle clients (its closures: the same clients, the same checks). */
export interface LifecycleHost {
  readonly sched: Scheduler;
  readonly agents: ReadonlyMap<string, SimAgent>;
  readonly acked: Map<string, LifecyclePlacement>;
  readonly book: MoveBook;
  readonly ask: <T>(
    fn: (c: { flow?: PlaceFlow; moves?: ResizeDeps }) => Promise<Result<T>>,
    label: string,
  ) => Promise<Result<T> | 'timeout'>;
  readonly retryable: (code: string) => boolean;
  readonly checkPlaced: (requestId: string, reply: PlaceReply) => void;
  readonly nextId: () => number;
  /** The host lost for good (its disk is the decommission's word). */
  readonly lostNode: string | undefined;
}

/** The fields of the cluster layer's acknowledged placements the lifecycle reads and sets. */
export interface LifecyclePlacement {
  readonly requestId: string;
  readonly tenantId: string;
  readonly nodeId: string;
  readonly allocationId: string;
  readonly reservation: boolean;
  activated: 'no' | 'unknown' | 'ok';
  release: 'no' | 'unknown' | 'ok';
  moving?: unknown;
  moved?: true;
  /** Released on its node by a `preempted` record naming it a victim (the only way it may end unreleased by its tenant). */
  preempted?: true;
}

/** One resize a client sent, as far as it heard. */
interface SentResize {
  readonly resizeId: string;
  readonly allocationId: string;
  readonly nodeId: string;
  readonly to: { memoryMiB: number; vcpus: number };
  /** ok: acknowledged; refused: the last answer was a refusal; unknown: never answered for sure. */
  outcome: 'ok' | 'refused' | 'unknown';
  /** Every attempt was answered, the last a refusal: no copy of it can have changed anything. */
  refusedClean?: true;
  /** The order acknowledgements arrived in (a late retry may be acknowledged after a later resize). */
  ackedAs?: number;
}

export class Lifecycle {
  readonly random: RandomSource;
  /** The share of a client's turns that are lifecycle verbs. */
  readonly share: number;
  /** In half the runs, the share of resize requests to agents of which a copy arrives 6-12 s late. */
  readonly lateResizeP: number;
  readonly #h: LifecycleHost;
  /** Resizes by allocation id, in the order sent. */
  readonly #resizes = new Map<string, SentResize[]>();
  /** Allocations a client is resizing now (one resize at a time per VM, as a scheduler does). */
  readonly #resizing = new Set<string>();
  /** Victims released by a `preempted` record, by allocation id: the preemptor's allocation id. */
  readonly #victims = new Map<string, string>();
  /** Victims in a grace period (a `preempting` record), by `<node>/<allocation id>`: the preemptor's allocation id. */
  readonly #waiting = new Map<string, string>();
  #acks = 0;
  #graced = 0;
  /** Every allocation's priority as committed, by `<node>/<allocation id>` (a victim record does not carry it). */
  readonly #priorities = new Map<string, number>();

  constructor(seed: number, host: LifecycleHost) {
    this.random = seededRandom((seed * 2_246_822_519 + 0x6c696665) >>> 0);
    this.share = 0.15 + this.random() * 0.25;
    this.lateResizeP = this.random() < 0.5 ? 0.3 : 0;
    this.#h = host;
  }

  describe(): string {
    return `lifecycle: ${(this.share * 100).toFixed(0)}% of client turns preempt or resize, late resize copies ${this.lateResizeP}`;
  }

  /**
   * A copy of a resize that reaches its agent 6-12 s late: after the coordinator gave up on it and, often, after the
   * reconciler settled its hold (5 s unchanged) or a refusal gave it back; only the fence keeps it from growing the VM
   * with its quota returned.
   */
  lateCopy(verb: string): number | undefined {
    if (verb !== 'resize' || this.lateResizeP === 0 || this.random() >= this.lateResizeP) return undefined;
    return 6_000 + Math.floor(this.random() * 6_000);
  }

  /** One client turn of a lifecycle verb. */
  async turn(client: number): Promise<void> {
    if (this.random() < 0.45) await this.#preemptingPlace(client);
    else await this.#resize(client);
  }

  /**
   * Each durable record, once folded into its disk's model. A `preempted` record releases its victims and commits its
   * preemptor in one step (the model checks capacity on it); here: each victim at least the gap below the preemptor; a
   * victim waiting out a grace period ends only by its preemptor's `preempted` record (or runs on when the preemptor
   * expires), never by a release of its own; and the VMs it names are freed from their promises.
   */
  onRecord(agent: SimAgent, record: HostRecord): void {
    const { sched } = this.#h;
    if (record.kind === 'allocated' || record.kind === 'reserved' || record.kind === 'preempted')
      this.#priorities.set(`${agent.nodeId}/${record.allocation.id}`, record.allocation.priority);
    if (record.kind === 'released' || record.kind === 'expired') {
      const key = `${agent.nodeId}/${record.allocationId}`;
      if (record.kind === 'released' && this.#waiting.has(key))
        sched.fail(
          `${agent.nodeId}: ${record.allocationId}, a victim in its grace period for ${this.#waiting.get(key)}, released by a record of its own`,
        );
      // A preemptor that expired: its victims run on.
      if (record.kind === 'expired') for (const [k, p] of this.#waiting) if (p === record.allocationId) this.#waiting.delete(k);
      return;
    }
    if (record.kind !== 'preempted' && record.kind !== 'preempting') return;
    const preemptor = record.allocation;
    for (const v of record.victims) {
      const key = `${agent.nodeId}/${v.allocationId}`;
      const priority = this.#priorities.get(key);
      if (priority === undefined || priority > preemptor.priority - PREEMPTION_PRIORITY_GAP)
        sched.fail(
          `${agent.nodeId}: ${record.kind} ${preemptor.id} (priority ${preemptor.priority}) names victim ${v.allocationId} of priority ${priority ?? 'unknown'}`,
        );
      if (record.kind === 'preempting' && v === record.victims[0]) this.#graced++;
      if (record.kind === 'preempting') {
        this.#waiting.set(key, preemptor.id);
        continue;
      }
      this.#waiting.delete(key);
      this.#victims.set(`${agent.nodeId}/${v.allocationId}`, preemptor.id);
      for (const a of this.#h.acked.values()) if (a.allocationId === v.allocationId && a.nodeId === agent.nodeId) a.preempted = true;
      // A move of a preempted VM promises nothing more: its tenant's VM was taken (a held destination preempted before
      // any confirm leaves the source, which must still survive).
      const requestId = agent.model.get(v.allocationId)?.requestId;
      for (const m of this.#h.book.values())
        if (m.sourceRequestId === requestId || (m.destRequestId === requestId && m.confirmSent)) m.mustSurvive = false;
    }
  }

  /** Whether a `preempted` record on this node released this allocation. */
  isVictim(nodeId: string, allocationId: string): boolean {
    return this.#victims.has(`${nodeId}/${allocationId}`);
  }

  /**
   * Before the settled checks: every acknowledged placement a preemption released is judged here, also one whose place
   * was answered after its allocation was preempted (the agent's answer is the allocation as its turn found it).
   */
  markVictims(): void {
    for (const a of this.#h.acked.values()) if (this.isVictim(a.nodeId, a.allocationId)) a.preempted = true;
    // A move of a victim started before its place was answered (or before the record was seen) promises nothing either.
    for (const key of this.#victims.keys()) {
      const [nodeId = '', id = ''] = key.split('/');
      const requestId = this.#h.agents.get(nodeId)?.model.get(id)?.requestId;
      for (const m of this.#h.book.values())
        if (m.sourceRequestId === requestId || (m.destRequestId === requestId && m.confirmSent)) m.mustSurvive = false;
    }
  }

  /** A place at priority 20 or 60 that allows preemption, of a larger VM, sometimes with a grace period. */
  async #preemptingPlace(client: number): Promise<void> {
    const { sched, acked } = this.#h;
    const requestId = `c${client}-pp${this.#h.nextId()}`;
    const tenantId = `t${sched.int(1, 3)}`;
    const graceMs = sched.chance(0.4) ? sched.int(200, 4_000) : undefined;
    const req = PlaceRequestSchema.parse({
      request: {
        requestId,
        tenantId,
        priority: sched.pick([20, 60]),
        resources: { memoryMiB: 512 * sched.int(4, 12), vcpus: sched.int(2, 6) },
      },
      placement: { constraints: [], allowPreemption: true, ...(graceMs === undefined ? {} : { preemptionGraceMs: graceMs }) },
    });
    const label = `preempting place ${requestId}${graceMs === undefined ? '' : ` (grace ${graceMs} ms)`}`;
    for (let attempt = 1; attempt <= 5; attempt++) {
      const reply = await this.#h.ask<PlaceReply>((c) => (c.flow as PlaceFlow).place(structuredClone(req)), label);
      if (reply === 'timeout') continue;
      if (reply.ok) {
        this.#h.checkPlaced(requestId, reply.value);
        this.#checkVictimsOnAnswer(requestId, reply.value, graceMs !== undefined);
        if (!acked.has(requestId))
          acked.set(requestId, {
            requestId,
            tenantId,
            nodeId: reply.value.nodeId,
            allocationId: reply.value.allocation.id,
            // With a grace period the preemptor is answered reserved until the deadline; if its preemption cannot finish
            // it expires (never activated by a client: 'unknown').
            reservation: graceMs !== undefined,
            activated: graceMs === undefined ? 'no' : 'unknown',
            release: 'no',
          });
        if (sched.chance(0.2))
          sched.after(sched.int(0, 3_000), `${label} late retry`, () => {
            void this.#h
              .ask<PlaceReply>((c) => (c.flow as PlaceFlow).place(structuredClone(req)), `${label} (late retry)`)
              .then((late) => {
                if (late !== 'timeout' && late.ok) this.#h.checkPlaced(requestId, late.value);
              });
          });
        return;
      }
      if (!this.#h.retryable(reply.error.code)) return;
    }
  }

  /** Answered with victims: without a grace period they are released on the node's disk (by the preemptor's record). */
  #checkVictimsOnAnswer(requestId: string, reply: PlaceReply, grace: boolean): void {
    const agent = this.#h.agents.get(reply.nodeId);
    if (agent === undefined || reply.nodeId === this.#h.lostNode) return;
    for (const v of reply.preempted) {
      const status = agent.model.get(v.allocationId)?.status ?? 'missing';
      const ok = grace ? status === 'releasing' || status === 'released' || status === 'active' : status === 'released';
      if (!ok)
        this.#h.sched.fail(
          `place ${requestId} answered with victim ${v.allocationId} preempted, which is ${status} on ${reply.nodeId}'s disk`,
        );
      if (!grace && status === 'released' && this.#victims.get(`${reply.nodeId}/${v.allocationId}`) !== reply.allocation.id)
        this.#h.sched.fail(
          `place ${requestId}: victim ${v.allocationId} was released on ${reply.nodeId} by no preempted record of ${reply.allocation.id}`,
        );
    }
  }

  /** Grows or shrinks one active VM in place, retried under the resize's id; an unknown outcome may be retried late. */
  async #resize(client: number): Promise<void> {
    const { sched, agents } = this.#h;
    const open = [...this.#h.acked.values()].filter(
      (a) =>
        a.release === 'no' &&
        a.moving === undefined &&
        a.moved === undefined &&
        a.preempted === undefined &&
        !this.#resizing.has(a.allocationId) &&
        (!a.reservation || a.activated === 'ok'),
    );
    if (open.length === 0) return;
    const a = sched.pick(open);
    const now = agents.get(a.nodeId)?.model.get(a.allocationId);
    if (now === undefined) return;
    let to = { memoryMiB: 512 * sched.int(1, 10), vcpus: sched.int(1, 5) };
    if (to.memoryMiB === now.memoryMiB && to.vcpus === now.vcpus) to = { ...to, vcpus: to.vcpus + 1 };
    const sent: SentResize = {
      resizeId: `rs-${client}-${this.#h.nextId()}`,
      allocationId: a.allocationId,
      nodeId: a.nodeId,
      to,
      outcome: 'unknown',
    };
    this.#resizes.set(a.allocationId, [...(this.#resizes.get(a.allocationId) ?? []), sent]);
    this.#resizing.add(a.allocationId);
    const label = `resize ${sent.resizeId} of ${a.requestId} (${a.allocationId}) ${now.memoryMiB}/${now.vcpus} -> ${to.memoryMiB}/${to.vcpus}`;
    const send = (what: string): Promise<Result<Allocation> | 'timeout'> =>
      this.#h.ask<Allocation>(
        (c) =>
          resizeAllocation(c.moves as ResizeDeps, { requestId: sent.resizeId, allocationId: a.allocationId, resources: to }, a.tenantId),
        what,
      );
    let answeredAll = true;
    for (let attempt = 1; attempt <= 4; attempt++) {
      const reply = await send(label);
      if (reply === 'timeout') {
        answeredAll = false;
        continue;
      }
      if (reply.ok) {
        this.#acknowledged(sent, reply.value);
        break;
      }
      if (!this.#h.retryable(reply.error.code)) {
        sent.outcome = 'refused';
        if (answeredAll) sent.refusedClean = true;
        break;
      }
      answeredAll = false;
      await sleep(sched, 300, `${label} retry`);
    }
    this.#resizing.delete(a.allocationId);
    // A late copy of an unanswered resize (a client that retried anyway): it must answer what the resize did.
    if (sent.outcome === 'unknown' && sched.chance(0.4))
      sched.after(sched.int(0, 8_000), `${label} late retry`, () => {
        void send(`${label} (late retry)`).then((late) => {
          if (late !== 'timeout' && late.ok) this.#acknowledged(sent, late.value);
        });
      });
  }

  /** An acknowledged resize is on its node's disk under its own id, at the amounts asked. */
  #acknowledged(sent: SentResize, answer: Allocation): void {
    const { sched, agents } = this.#h;
    sent.outcome = 'ok';
    sent.ackedAs ??= ++this.#acks;
    if (sent.nodeId === this.#h.lostNode) return;
    const model = agents.get(sent.nodeId)?.model;
    if (model !== undefined && !model.hasResize(sent.resizeId))
      sched.fail(`resize ${sent.resizeId} of ${sent.allocationId} acknowledged, and no record of it is on ${sent.nodeId}'s disk`);
    if (answer.granted.memoryMiB !== sent.to.memoryMiB || answer.granted.vcpus !== sent.to.vcpus)
      sched.trace(
        `resize ${sent.resizeId} answered ${answer.granted.memoryMiB}/${answer.granted.vcpus} (asked ${sent.to.memoryMiB}/${sent.to.vcpus}): a later resize changed it since`,
      );
  }

  /**
   * Once settled: a refused resize left no record on its disk; a VM whose every resize has a known outcome, still
   * live and its tenant's, holds the amounts of its last acknowledged resize; a victim is released (and only victims
   * named by a preempted record end without their tenant's release: the cluster layer's checks).
   */
  checkSettled(): void {
    const { sched, agents } = this.#h;
    for (const [allocationId, sent] of this.#resizes) {
      const nodeId = sent[0]?.nodeId;
      if (nodeId === undefined || nodeId === this.#h.lostNode) continue;
      const model = agents.get(nodeId)?.model;
      const onDisk = model?.get(allocationId);
      if (model === undefined || onDisk === undefined) continue;
      for (const s of sent)
        if (s.refusedClean === true && model.hasResize(s.resizeId))
          sched.fail(`resize ${s.resizeId} of ${allocationId} was refused, and it is on ${nodeId}'s disk once settled`);
      const last = sent.at(-1);
      // A refusal after an unanswered attempt says nothing of that attempt (a refusal answers only the attempt it ends):
      // its resize may be on the disk.
      if (last === undefined || sent.some((s) => s.outcome === 'unknown' || (s.outcome === 'refused' && s.refusedClean !== true))) continue;
      if (onDisk.status !== 'active') continue;
      const acked = sent
        .filter((s) => s.outcome === 'ok')
        .sort((x, y) => (x.ackedAs ?? 0) - (y.ackedAs ?? 0))
        .at(-1);
      if (acked === undefined) continue;
      sched.trace(
        `settled: ${allocationId} on ${nodeId}: ${onDisk.memoryMiB}/${onDisk.vcpus} after ${sent.map((s) => `${s.resizeId} ${s.outcome}`).join(', ')}`,
      );
      if (onDisk.memoryMiB !== acked.to.memoryMiB || onDisk.vcpus !== acked.to.vcpus)
        sched.fail(
          `${allocationId} on ${nodeId} holds ${onDisk.memoryMiB} MiB/${onDisk.vcpus} vCPUs once settled; its last acknowledged resize ${acked.resizeId} made it ${acked.to.memoryMiB}/${acked.to.vcpus}`,
        );
    }
    const resizes = [...this.#resizes.values()].flat();
    sched.trace(
      `lifecycle: ${this.#victims.size} victims preempted, ${this.#graced} preemptions with a grace period begun; resizes ${resizes.filter((s) => s.outcome === 'ok').length} acknowledged, ${resizes.filter((s) => s.outcome === 'refused').length} refused, ${resizes.filter((s) => s.outcome === 'unknown').length} unknown`,
    );
    for (const [victim, preemptor] of this.#victims) {
      const [nodeId = '', id = ''] = victim.split('/');
      const a = agents.get(nodeId)?.model.get(id);
      if (a !== undefined && nodeId !== this.#h.lostNode && a.status !== 'released')
        sched.fail(`victim ${victim} of ${preemptor} is ${a.status} once settled`);
    }
  }
}
