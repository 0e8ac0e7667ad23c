/**
 * A host lost for good: the operator's side (evacuate the lost host, confirm every move, decommission it, confirm
 * again the moves whose source could only be given up by the decommission) and the
 * auditor's verdict on it (every acknowledged VM on exactly one live host, or given up by the decommission and reported).
 */
import type { DecommissionReply, EvacuateReply } from '@allot/protocol';
import type { LedgerReplay, Verdict } from './auditor.ts';
import type { OpRecord } from './clients.ts';
import type { ChaosCluster } from './topology.ts';

/** What the operator did to a lost host and what the coordinators answered, for the audit and the table. */
export class HostLoss {
  readonly nodeId: string;
  /** When the evacuation began: from then on the lost host's allocations count for nothing (they run nowhere). */
  startedAt = 0;
  evacuation: EvacuateReply | undefined;
  /** Source placement request id -> its confirmed destination (request id and node). */
  readonly moved = new Map<string, { requestId: string; nodeId: string }>();
  /** Placements the decommission gave up (`gone`) or failed (`failed`), and what was left unsettled. */
  readonly givenUp = new Set<string>();
  decommission: DecommissionReply | undefined;
  readonly problems: string[] = [];

  constructor(nodeId: string) {
    this.nodeId = nodeId;
  }

  /** Evacuates the host (resumable by its request id), confirms every move, then decommissions it until settled. */
  async evacuateAndDecommission(c: ChaosCluster, name: string): Promise<void> {
    this.startedAt = Date.now();
    const afterDecommission: EvacuateReply['moves'] = [];
    const evacuated = await retried(() => c.sched('evacuate', { requestId: `${name}-evacuate`, nodeId: this.nodeId }, 60_000));
    if (!evacuated.ok) this.problems.push(`evacuate ${this.nodeId}: ${evacuated.error.code}: ${evacuated.error.message}`);
    else {
      this.evacuation = evacuated.value;
      if (evacuated.value.movesCount > evacuated.value.moves.length)
        this.problems.push(`evacuate listed ${evacuated.value.moves.length} of ${evacuated.value.movesCount} moves`);
      // A source on a lost host cannot prove its release: the confirm answers unavailable (reason move_source) and the
      // source stays counted until the operator's decommission gives it up (Nova's evacuate needs the host forced
      // down). Those moves are confirmed again once the decommission settled.
      for (const m of evacuated.value.moves) {
        const confirmed = await this.#confirm(c, m, (e) => e.details?.['reason'] === 'move_source');
        if (!confirmed.ok && confirmed.error.details?.['reason'] === 'move_source') afterDecommission.push(m);
      }
    }
    for (let round = 1; round <= 5; round++) {
      const d = await retried(() =>
        c.sched(
          'node.decommission',
          { requestId: `${name}-decommission-${round}`, nodeId: this.nodeId, reason: 'chaos: host lost for good' },
          30_000,
        ),
      );
      if (!d.ok) {
        this.problems.push(`node.decommission ${this.nodeId}: ${d.error.code}: ${d.error.message}`);
        return;
      }
      this.decommission = d.value;
      for (const id of [...d.value.gone, ...d.value.failed]) this.givenUp.add(id);
      if (d.value.unsettled.length === 0 && d.value.removed) {
        for (const m of afterDecommission) await this.#confirm(c, m);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
    this.problems.push(
      `decommission of ${this.nodeId} never settled: ${this.decommission?.unsettled.length ?? '?'} unsettled, removed ${this.decommission?.removed}`,
    );
  }

  /** move.confirm, retried; a confirmed move is recorded, any other answer is a problem unless `waits` says it waits. */
  async #confirm(
    c: ChaosCluster,
    m: EvacuateReply['moves'][number],
    waits: (e: Failure) => boolean = () => false,
  ): Promise<Answer<unknown>> {
    const confirmed = await retried(
      () => c.sched('move.confirm', { requestId: m.moveRequestId, allocationId: m.source.allocationId, tenantId: m.tenantId }, 30_000),
      waits,
    );
    if (!confirmed.ok) {
      if (!waits(confirmed.error))
        this.problems.push(`move.confirm ${m.moveRequestId} (${m.source.requestId}): ${confirmed.error.code}: ${confirmed.error.message}`);
    } else if (confirmed.value.state !== 'confirmed')
      this.problems.push(`move.confirm ${m.moveRequestId} (${m.source.requestId}) answered ${confirmed.value.state}`);
    else
      this.moved.set(m.source.requestId, { requestId: confirmed.value.destination.requestId, nodeId: confirmed.value.destination.nodeId });
    return confirmed;
  }

  summary(): string {
    const e = this.evacuation;
    const d = this.decommission;
    // Why placements got no destination, by code and reason (e.g. the other hosts being full after the storm).
    const why = new Map<string, number>();
    for (const u of e?.unplaced ?? []) {
      const key = `${u.error.code}${typeof u.error.details?.reason === 'string' ? ` ${u.error.details.reason}` : ''}: ${u.error.message.slice(0, 80)}`;
      why.set(key, (why.get(key) ?? 0) + 1);
    }
    const unplaced = [...why].map(([k, n]) => `${n}x ${k}`).join('; ');
    return `${this.nodeId}: ${e === undefined ? 'no evacuation' : `${e.movesCount} moves (${this.moved.size} confirmed), ${e.unplacedCount} unplaced${unplaced === '' ? '' : ` (${unplaced})`}`}; ${d === undefined ? 'no decommission' : `decommission: ${d.gone.length} gone, ${d.failed.length} failed, ${d.unsettled.length} unsettled, removed ${d.removed}`}`;
  }

  /**
   * Every acknowledged VM (a place answered ok, an acknowledged reservation only once activated with an ok, not
   * released with an ok) ends up live on exactly one live host: under its own request id, or, moved off the lost host,
   * under its move's destination request id; or it was given up by the decommission (counted, reported).
   */
  audit(ops: OpRecord[], ledgers: LedgerReplay[]): Verdict {
    const liveWhere = new Map<string, { nodeId: string; id: string }[]>();
    for (const l of ledgers) {
      if (l.nodeId === this.nodeId) continue;
      for (const a of l.live.values()) liveWhere.set(a.requestId, [...(liveWhere.get(a.requestId) ?? []), { nodeId: l.nodeId, id: a.id }]);
    }
    const activatedOk = new Set(ops.filter((o) => o.kind === 'activate' && o.outcome === 'acked').map((o) => o.placementRequestId));
    const activateUnsure = new Set(ops.filter((o) => o.kind === 'activate' && o.outcome === 'timed_out').map((o) => o.placementRequestId));
    const releasedOk = new Set(ops.filter((o) => o.kind === 'release' && o.outcome === 'acked').map((o) => o.placementRequestId));
    const releaseUnsure = new Set(ops.filter((o) => o.kind === 'release' && o.outcome !== 'acked').map((o) => o.placementRequestId));
    const problems = [...this.problems];
    let onLive = 0;
    let movedFound = 0;
    let givenUp = 0;
    for (const o of ops) {
      if (o.kind !== 'place' || o.outcome !== 'acked') continue;
      const dest = this.moved.get(o.requestId);
      const found = [...(liveWhere.get(o.requestId) ?? []), ...(dest === undefined ? [] : (liveWhere.get(dest.requestId) ?? []))];
      const where = found.map((f) => `${f.nodeId}/${f.id}`).join(', ') || 'no live host';
      if (o.reservationTtlMs !== undefined && !activatedOk.has(o.requestId)) {
        // Not activated with an ok: it expires (or died with the host); an activate without an answer may have landed.
        if (found.length > 1) problems.push(`${o.requestId}: a reservation live ${found.length} times: ${where}`);
        if (found.length === 1 && !activateUnsure.has(o.requestId) && dest === undefined)
          problems.push(`${o.requestId}: a reservation never activated, still live on ${where}`);
        continue;
      }
      if (releasedOk.has(o.requestId)) {
        if (found.length > 0)
          problems.push(
            `${o.requestId}: released with an ok, still live on ${where}${dest === undefined ? '' : ` (moved off ${this.nodeId} as ${dest.requestId})`}`,
          );
        continue;
      }
      if (found.length === 0 && releaseUnsure.has(o.requestId)) continue; // a release without an answer may have landed
      if (found.length === 1) {
        onLive += 1;
        if (dest !== undefined) movedFound += 1;
        continue;
      }
      if (found.length === 0 && this.givenUp.has(o.requestId)) {
        givenUp += 1;
        continue;
      }
      problems.push(
        `${o.requestId}: acknowledged on ${o.nodeId} as ${o.allocationId}${dest === undefined ? '' : `, moved to ${dest.nodeId} as ${dest.requestId}`}; live on ${where}${this.givenUp.has(o.requestId) ? ' (and given up by the decommission)' : ''}`,
      );
    }
    return {
      name: `every acknowledged VM on exactly one live host or given up (${this.nodeId} lost)`,
      ok: problems.length === 0,
      problems,
      note: `${onLive} on one live host (${movedFound} moved off ${this.nodeId}), ${givenUp} given up by the decommission; ${this.summary()}`,
    };
  }

  /** The lost host's allocations end when the evacuation begins (they run nowhere; the coordinators count them no longer). */
  endLostAllocations(ledgers: LedgerReplay[]): void {
    const l = ledgers.find((x) => x.nodeId === this.nodeId);
    if (l === undefined) return;
    for (const id of l.live.keys()) l.lifetimes.push({ at: this.startedAt, kind: 'end', allocationId: id });
  }
}

/** One operator request retried on timeout/unavailable (same request id: each of these verbs is idempotent) for 90 s. */
type Failure = { code: string; message: string; details?: Record<string, unknown> };
type Answer<T> = { ok: true; value: T } | { ok: false; error: Failure };

async function retried<T>(f: () => Promise<Answer<T>>, final: (e: Failure) => boolean = () => false): Promise<Answer<T>> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const r = await f();
    if (r.ok || (r.error.code !== 'timeout' && r.error.code !== 'unavailable') || final(r.error) || Date.now() > deadline) return r;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
