/**
 * Scenario 9, live migration under agent restarts: a mover places VMs of its own (tenant t1, ids the storm's workers
 * never release), then moves them between agents (two-phase: `move` holds the destination, `move.confirm` or
 * `move.abort` settles it) while the fault plan SIGKILLs and restarts agents, sources and destinations alike. The
 * verdict reads the agents' own ledgers: after settling, every VM the mover placed is live on exactly one host, where
 * its last answered settlement puts it (confirmed: the destination; aborted or never confirmed: the source).
 */
import type { Move } from '@allot/protocol';
import type { LedgerReplay, Verdict } from './auditor.ts';
import type { ChaosCluster } from './topology.ts';

const TENANT = 't1';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One VM the mover owns: where its last settled state puts it, and every move tried on it. */
export type MovedVm = {
  /** The placement's own request id (the chain starts here). */
  placedAs: string;
  /** Where it must live now: the placement, or the destination of its last confirmed move. */
  requestId: string;
  allocationId: string;
  nodeId: string;
  /** Destinations whose move's settlement never got an answer: the VM may be there instead (one of the two, never both). */
  unsure: { requestId: string; nodeId: string }[];
  /** Every request id of this VM's chain (placement and every move's destination), to find it in the ledgers. */
  chain: Set<string>;
};

/** A move tried, for the per-step figures. */
export type MoveRecord = {
  startedAt: number;
  vm: string;
  from: string;
  to?: string;
  outcome: 'confirmed' | 'aborted' | 'refused' | 'unanswered';
  /** Requests sent again after a timeout/unavailable (move, confirm, abort). */
  retries: number;
  endedAt?: number;
  /** The refusal's message, for codes that are not the scheduler working (internal). */
  message?: string;
  code?: string;
};

type Reply<T> = { ok: true; value: T } | { ok: false; error: { code: string; message: string } };

/** A request sent again with the same body while it answers timeout/unavailable, up to deadlineMs; counts the retries. */
async function untilAnswered<T>(f: () => Promise<Reply<T>>, deadlineMs: number): Promise<{ reply: Reply<T>; retries: number }> {
  const deadline = Date.now() + deadlineMs;
  let retries = 0;
  for (;;) {
    const reply = await f();
    if (reply.ok || (reply.error.code !== 'timeout' && reply.error.code !== 'unavailable') || Date.now() > deadline)
      return { reply, retries };
    retries += 1;
    await sleep(250);
  }
}

export class MigrationRun {
  readonly vms: MovedVm[] = [];
  readonly moves: MoveRecord[] = [];
  /** The fault plan's steps: a label from each instant on (the per-step figures). */
  readonly steps: { label: string; at: number }[] = [];
  readonly problems: string[] = [];
  /** The move in flight now (its source, and its destination once held): the fault plan kills these. */
  inFlight: { from: string; to?: string } | undefined;
  #stopped = false;
  readonly #name: string;

  constructor(name: string) {
    this.#name = name;
  }

  /** Agents SIGKILLed, and when: a move whose source or destination was killed while it ran was hit. */
  readonly kills: { member: string; at: number }[] = [];

  step(label: string): void {
    this.steps.push({ label, at: Date.now() });
  }

  killed(...members: string[]): void {
    for (const member of members) this.kills.push({ member, at: Date.now() });
  }

  /** Places `count` VMs of the mover's own (retried until answered). */
  async placeVms(c: ChaosCluster, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const requestId = `${this.#name}-vm${i}`;
      const { reply } = await untilAnswered(
        () => c.sched('place', { request: { requestId, tenantId: TENANT, resources: { memoryMiB: 512, vcpus: 1 } } }, 5_000),
        30_000,
      );
      if (!reply.ok) {
        this.problems.push(`mover place ${requestId}: ${reply.error.code}: ${reply.error.message}`);
        continue;
      }
      const { nodeId, allocation } = reply.value;
      this.vms.push({ placedAs: requestId, requestId, allocationId: allocation.id, nodeId, unsure: [], chain: new Set([requestId]) });
    }
  }

  /** Moves the VMs in turn until stop(): about 70% of the held moves confirmed, the rest aborted. */
  async run(c: ChaosCluster, random: () => number): Promise<void> {
    for (let n = 0; !this.#stopped; n++) {
      const vm = this.vms[n % Math.max(1, this.vms.length)];
      if (vm === undefined) return;
      await this.#moveOnce(c, vm, `${this.#name}-mv${n}`, random);
      const last = this.moves.at(-1);
      if (last !== undefined) last.endedAt = Date.now();
    }
  }

  stop(): void {
    this.#stopped = true;
  }

  async #moveOnce(c: ChaosCluster, vm: MovedVm, moveId: string, random: () => number): Promise<void> {
    const startedAt = Date.now();
    const record: MoveRecord = { startedAt, vm: vm.placedAs, from: vm.nodeId, outcome: 'refused', retries: 0 };
    this.moves.push(record);
    this.inFlight = { from: vm.nodeId };
    const body = { requestId: moveId, allocationId: vm.allocationId, tenantId: TENANT };
    const held = await untilAnswered(() => c.sched('move', { ...body, holdMs: 15_000 }, 5_000), 20_000);
    record.retries += held.retries;
    if (!held.reply.ok) {
      record.code = held.reply.error.code;
      record.message = held.reply.error.message;
      // A move never answered may hold a destination: it expires unconfirmed, so the VM stays on the source.
      if (held.reply.error.code === 'timeout' || held.reply.error.code === 'unavailable') record.outcome = 'unanswered';
      await sleep(200);
      return;
    }
    const move: Move = held.reply.value;
    record.to = move.destination.nodeId;
    this.inFlight = { from: vm.nodeId, to: move.destination.nodeId };
    vm.chain.add(move.destination.requestId);
    await sleep(100 + Math.floor(random() * 600));
    const confirm = random() < 0.7;
    const settled = await untilAnswered(() => c.sched(confirm ? 'move.confirm' : 'move.abort', body, 5_000), 20_000);
    record.retries += settled.retries;
    if (!settled.reply.ok) {
      record.code = settled.reply.error.code;
      record.message = settled.reply.error.message;
      record.outcome = 'unanswered';
      // Unanswered: either end is possible (a confirm may have landed); the verdict still wants exactly one.
      vm.unsure.push({ requestId: move.destination.requestId, nodeId: move.destination.nodeId });
      return;
    }
    const state = settled.reply.value.state;
    if (state === 'confirmed') {
      record.outcome = 'confirmed';
      const allocationId = settled.reply.value.destination.allocation?.id ?? (await this.#allocationOf(c, move));
      if (allocationId === undefined) {
        this.problems.push(`${moveId}: confirmed, but ${move.destination.nodeId} lists no ${move.destination.requestId}`);
        return;
      }
      vm.requestId = move.destination.requestId;
      vm.nodeId = move.destination.nodeId;
      vm.allocationId = allocationId;
      vm.unsure = [];
    } else if (state === 'aborted') record.outcome = 'aborted';
    else this.problems.push(`${moveId}: ${confirm ? 'move.confirm' : 'move.abort'} answered ${state}`);
  }

  async #allocationOf(c: ChaosCluster, move: Move): Promise<string | undefined> {
    const listed = await c.listAllocations(move.destination.nodeId);
    return listed.ok ? listed.value.find((a) => a.requestId === move.destination.requestId)?.id : undefined;
  }

  /**
   * Every VM of the mover live on exactly one host after settling, and there: under the request id and on the node its
   * last confirmed move (or its placement) names, or, after a settlement that never got an answer, at one of the two.
   */
  audit(ledgers: LedgerReplay[]): Verdict {
    const problems = [...this.problems];
    const live = new Map<string, { nodeId: string; id: string }[]>();
    for (const l of ledgers)
      for (const a of l.live.values()) live.set(a.requestId, [...(live.get(a.requestId) ?? []), { nodeId: l.nodeId, id: a.id }]);
    let moved = 0;
    for (const vm of this.vms) {
      const found = [...vm.chain].flatMap((id) => (live.get(id) ?? []).map((f) => ({ ...f, requestId: id })));
      const where = found.map((f) => `${f.requestId}@${f.nodeId}`).join(', ') || 'no host';
      const allowed = [{ requestId: vm.requestId, nodeId: vm.nodeId }, ...vm.unsure];
      if (found.length !== 1) problems.push(`${vm.placedAs}: live ${found.length} times (${where}); expected ${vm.requestId}@${vm.nodeId}`);
      else if (!allowed.some((a) => a.requestId === found[0]?.requestId && a.nodeId === found[0]?.nodeId))
        problems.push(`${vm.placedAs}: live as ${where}; expected ${allowed.map((a) => `${a.requestId}@${a.nodeId}`).join(' or ')}`);
      if (vm.requestId !== vm.placedAs) moved += 1;
    }
    return {
      name: 'every moved VM live on exactly one host (confirmed: destination; else source)',
      ok: problems.length === 0 && this.vms.length > 0,
      problems: this.vms.length === 0 ? ['the mover placed no VM', ...problems] : problems,
      note: `${this.vms.length} VMs, ${moved} away from where they were placed; ${this.#counts(this.moves)}${this.moves
        .filter((m) => m.code === 'internal')
        .map((m) => `; internal: ${m.message?.slice(0, 160) ?? ''}`)
        .join('')}`,
    };
  }

  #counts(moves: MoveRecord[]): string {
    const by = (o: MoveRecord['outcome']) => moves.filter((m) => m.outcome === o).length;
    const codes = new Map<string, number>();
    for (const m of moves) if (m.outcome === 'refused' && m.code !== undefined) codes.set(m.code, (codes.get(m.code) ?? 0) + 1);
    const refused = [...codes].map(([k, n]) => `${n} ${k}`).join(', ');
    const hit = moves.filter((m) =>
      this.kills.some((k) => (k.member === m.from || k.member === m.to) && k.at >= m.startedAt && k.at <= (m.endedAt ?? Infinity)),
    ).length;
    return `${moves.length} moves (${hit} with source or destination killed meanwhile): ${by('confirmed')} confirmed, ${by('aborted')} aborted, ${by('refused')} refused${refused === '' ? '' : ` (${refused})`}, ${by('unanswered')} unanswered, ${moves.reduce((s, m) => s + m.retries, 0)} retries`;
  }

  /** The moves started in each step of the fault plan. */
  table(): string {
    const lines = ['moves per step (started in the step):'];
    this.steps.forEach((s, i) => {
      const end = this.steps[i + 1]?.at ?? Number.POSITIVE_INFINITY;
      const inStep = this.moves.filter((m) => m.startedAt >= s.at && m.startedAt < end);
      lines.push(`  ${s.label.padEnd(44)} ${this.#counts(inStep)}`);
    });
    return lines.join('\n');
  }
}
