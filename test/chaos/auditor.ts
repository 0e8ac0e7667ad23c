/**
 * The independent auditor. It trusts neither the coordinator nor the agents' own counters: it replays each agent's
 * ledger (copied out of the stopped container, opened with @allot/ledger, every record validated with the
 * HostRecord schema) record by record against capacities it computes itself from the host sizes it configured,
 * and compares the agents' final state with every reply the clients received.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Allocation } from '@allot/core';
import { openLedger } from '../../packages/ledger/src/index.ts';
import { HostRecordSchema, HostStateSnapshotSchema, type HostRecord, type HostStateSnapshot } from '../../packages/managers/src/index.ts';
import type { OpRecord } from './clients.ts';
import type { HostSpec } from './topology.ts';

export type Verdict = { name: string; ok: boolean; problems: string[]; note?: string };

export type LedgerReplay = {
  nodeId: string;
  records: number;
  snapshotSeq: number;
  /** Live allocations after the last record, by allocation id. */
  live: Map<string, Allocation>;
  /** Every request id ever allocated on this node (allocated/reserved records). */
  everAllocated: Set<string>;
  /** Every allocation ever made on this node (as first recorded), by allocation id. */
  byId: Map<string, Allocation>;
  /** When each allocation began and ended (released or expired), in ledger order: the tenant-limit timeline. */
  lifetimes: { at: number; kind: 'start' | 'end'; allocationId: string }[];
  /** Reservations: when each was activated, and when each expired. */
  activatedAt: Map<string, number>;
  expiredAt: Map<string, number>;
  /** Allocations ended by a release record (not by expiry). */
  releasedAt: Map<string, number>;
  /** How each allocation ended, by allocation id: "released at <at>: <reason>" or "expired at <at>". */
  endings: Map<string, string>;
  capacityProblems: string[];
  duplicateProblems: string[];
  peak: { memoryMiB: number; sharedVcpus: number; exclusiveCores: number };
};

/** floor(amount x ratio) with the ratio as an integer percentage, as the managers apply it. */
function scaled(amount: number, ratio: number): number {
  return Math.floor((amount * Math.round(ratio * 100)) / 100);
}

/** A node's replay before its first record. */
export function emptyReplay(nodeId: string): LedgerReplay {
  return {
    nodeId,
    records: 0,
    snapshotSeq: 0,
    live: new Map(),
    everAllocated: new Set(),
    byId: new Map(),
    lifetimes: [],
    activatedAt: new Map(),
    expiredAt: new Map(),
    releasedAt: new Map(),
    endings: new Map(),
    capacityProblems: [],
    duplicateProblems: [],
    peak: { memoryMiB: 0, sharedVcpus: 0, exclusiveCores: 0 },
  };
}

/** Loads a copied state dir and replays it, checking the invariants after every record (every prefix of the ledger). */
export async function replayLedger(stateDir: string, host: HostSpec): Promise<LedgerReplay> {
  // The agent keeps its ledger in <stateDir>/ledger; openLedger would create an empty one where there is none.
  const dir = join(stateDir, 'ledger');
  if (!existsSync(dir)) throw new Error(`${host.nodeId}: no ledger in the copied state dir ${stateDir}`);
  await rm(join(dir, 'LOCK'), { force: true });
  const opened = await openLedger<unknown, unknown>(dir);
  try {
    const out: LedgerReplay = { ...emptyReplay(host.nodeId), records: opened.records.length, snapshotSeq: opened.snapshot?.seq ?? 0 };
    let snapshot: HostStateSnapshot | undefined;
    if (opened.snapshot !== undefined) {
      snapshot = HostStateSnapshotSchema.parse(opened.snapshot.state);
      for (const a of snapshot.live) {
        out.live.set(a.id, a);
        out.everAllocated.add(a.requestId);
        out.byId.set(a.id, a);
        out.lifetimes.push({ at: 0, kind: 'start', allocationId: a.id }); // before the snapshot: began before anything after it
      }
      // Releases the snapshot retains (its compaction dropped their records): an expired reservation is marked so.
      for (const r of snapshot.released) {
        out.byId.set(r.allocation.id, r.allocation);
        if (r.releaseRequestId === 'expired') out.expiredAt.set(r.allocation.id, r.releasedAt);
        else out.releasedAt.set(r.allocation.id, r.releasedAt);
      }
    }
    const memCap = scaled(host.memoryMiB, host.memoryOvercommit);
    const check = (where: string) => {
      let memory = 0;
      let shared = 0;
      const exclusiveOwner = new Map<number, string>();
      const sharedHomes = new Map<number, string>();
      const liveByRequest = new Map<string, string>();
      for (const a of out.live.values()) {
        if (a.status !== 'active' && a.status !== 'reserved' && a.status !== 'releasing') continue;
        memory += a.granted.memoryMiB;
        const other = liveByRequest.get(a.requestId);
        if (other !== undefined) out.duplicateProblems.push(`${where}: request ${a.requestId} holds ${other} and ${a.id}`);
        liveByRequest.set(a.requestId, a.id);
        if (a.cpu === null) continue;
        if (a.cpu.mode === 'exclusive') {
          for (const core of a.cpu.cpuset) {
            const owner = exclusiveOwner.get(core);
            if (owner !== undefined) out.capacityProblems.push(`${where}: exclusive core ${core} held by ${owner} and ${a.id}`);
            exclusiveOwner.set(core, a.id);
          }
        } else {
          shared += a.cpu.vcpus;
          for (const core of a.cpu.cpuset) sharedHomes.set(core, a.id);
        }
      }
      for (const [core, owner] of exclusiveOwner) {
        if (core >= host.cores) out.capacityProblems.push(`${where}: exclusive core ${core} of ${owner} does not exist`);
        const home = sharedHomes.get(core);
        if (home !== undefined) out.capacityProblems.push(`${where}: core ${core} is exclusive to ${owner} and home of shared ${home}`);
      }
      const sharedCap = scaled(host.cores - exclusiveOwner.size, host.cpuOvercommit);
      if (memory > memCap) out.capacityProblems.push(`${where}: memory committed ${memory} MiB > effective capacity ${memCap} MiB`);
      if (shared > sharedCap)
        out.capacityProblems.push(
          `${where}: shared vCPUs ${shared} > shared capacity ${sharedCap} (${host.cores - exclusiveOwner.size} shared cores x ${host.cpuOvercommit})`,
        );
      out.peak.memoryMiB = Math.max(out.peak.memoryMiB, memory);
      out.peak.sharedVcpus = Math.max(out.peak.sharedVcpus, shared);
      out.peak.exclusiveCores = Math.max(out.peak.exclusiveCores, exclusiveOwner.size);
    };
    check('snapshot');
    let prevSeq = snapshot?.seq ?? 0;
    for (const { seq, record } of opened.records) {
      const parsed = HostRecordSchema.safeParse(record);
      if (!parsed.success) {
        out.capacityProblems.push(`record ${seq}: not a HostRecord: ${parsed.error.issues[0]?.message}`);
        continue;
      }
      const r: HostRecord = parsed.data;
      if (r.seq !== prevSeq + 1) out.capacityProblems.push(`record ${seq}: host seq ${r.seq} after ${prevSeq}`);
      prevSeq = r.seq;
      applyRecord(out, r);
      check(`${host.nodeId} record ${seq} (${r.kind})`);
    }
    return out;
  } finally {
    await opened.ledger.close();
  }
}

/** One ledger record's effect on the replay (what is live, when allocations began and ended). */
export function applyRecord(out: LedgerReplay, r: HostRecord): void {
  switch (r.kind) {
    case 'allocated':
    case 'reserved':
      if (out.live.has(r.allocation.id)) out.duplicateProblems.push(`record ${r.seq}: allocation id ${r.allocation.id} allocated twice`);
      out.live.set(r.allocation.id, r.allocation);
      out.everAllocated.add(r.allocation.requestId);
      out.byId.set(r.allocation.id, r.allocation);
      out.lifetimes.push({ at: r.at, kind: 'start', allocationId: r.allocation.id });
      break;
    case 'activated': {
      const a = out.live.get(r.allocationId);
      if (a !== undefined) out.live.set(a.id, { ...a, status: 'active' });
      out.activatedAt.set(r.allocationId, r.at);
      break;
    }
    case 'released':
    case 'expired':
      if (out.live.delete(r.allocationId)) out.lifetimes.push({ at: r.at, kind: 'end', allocationId: r.allocationId });
      (r.kind === 'expired' ? out.expiredAt : out.releasedAt).set(r.allocationId, r.at);
      out.endings.set(r.allocationId, r.kind === 'expired' ? `expired at ${r.at}` : `released at ${r.at}: ${r.reason}`);
      break;
    case 'resized': {
      // The allocation holds its new amounts from here on (the capacity check of this prefix sees them).
      if (out.live.has(r.allocation.id)) out.live.set(r.allocation.id, r.allocation);
      break;
    }
    case 'preempted':
      // One record: the victims end and the preemptor begins (a grace period's 'preempting' record changes neither).
      for (const v of r.victims) {
        if (out.live.delete(v.allocationId)) out.lifetimes.push({ at: r.at, kind: 'end', allocationId: v.allocationId });
        out.releasedAt.set(v.allocationId, r.at);
        out.endings.set(v.allocationId, `preempted at ${r.at} by ${r.allocation.requestId}`);
      }
      applyRecord(out, { ...r, kind: 'allocated' });
      break;
    default:
      break;
  }
}

/**
 * Compares every client reply with the agents' final state.
 * - acked placements exist exactly once, on the named node, with the named allocation id, unless released with an ok;
 * - a request id is live on at most one node (and at most once there);
 * - the ledger's final state equals what the agent's `allocations` endpoint answered.
 */
export function auditReplies(ops: OpRecord[], ledgers: LedgerReplay[], endpoint: Map<string, Allocation[]>, lostNode?: string): Verdict[] {
  const verdicts: Verdict[] = [];
  const liveWhere = new Map<string, Allocation[]>();
  // A host lost for good holds what it held when it died: given up or moved, not live (HostLoss audits those).
  for (const l of ledgers.filter((x) => x.nodeId !== lostNode))
    for (const a of l.live.values()) liveWhere.set(a.requestId, [...(liveWhere.get(a.requestId) ?? []), a]);

  const activation = activationOutcomes(ops);
  const releasedOk = new Set(ops.filter((o) => o.kind === 'release' && o.outcome === 'acked').map((o) => o.placementRequestId));
  const releaseUnsure = new Set(ops.filter((o) => o.kind === 'release' && o.outcome !== 'acked').map((o) => o.placementRequestId));
  const lost: string[] = [];
  for (const o of ops) {
    if (o.kind !== 'place' || o.outcome !== 'acked') continue;
    const okReplies = o.replies.filter((r) => r.ok);
    if (new Set(okReplies.map((r) => `${r.nodeId}/${r.allocationId}`)).size > 1)
      lost.push(`${o.requestId}: ok replies disagree: ${okReplies.map((r) => `${r.nodeId}/${r.allocationId}`).join(' vs ')}`);
    const found = liveWhere.get(o.requestId) ?? [];
    // A reservation is a placement once activated with an ok; otherwise it ends at its expiry (auditReservations).
    const activated = activation.get(o.requestId);
    if (o.reservationTtlMs !== undefined && activated !== 'acked') {
      if (found.length === 0) continue; // expired (or activated without an answer, then released: no worker does that)
      if (activated !== 'timed_out') {
        lost.push(
          `${o.requestId}: a reservation never activated, still live at the end on ${found.map((a) => `${a.nodeId}/${a.id} (${a.status})`).join(', ')}`,
        );
        continue;
      }
    }
    if (releasedOk.has(o.requestId)) {
      if (found.length > 0) lost.push(`${o.requestId}: released with ok, still live on ${found.map((a) => a.nodeId).join(', ')}`);
      continue;
    }
    if (releaseUnsure.has(o.requestId) && found.length === 0) continue; // a release without an answer may have happened
    if (found.length !== 1 || found[0]?.nodeId !== o.nodeId || found[0]?.id !== o.allocationId) {
      lost.push(
        `${o.requestId}: acknowledged on ${o.nodeId} as ${o.allocationId}; agents hold ${found.map((a) => `${a.nodeId}/${a.id}`).join(', ') || 'nothing'}`,
      );
    }
  }
  verdicts.push({ name: 'nothing acknowledged is lost', ok: lost.length === 0, problems: lost });

  const dup: string[] = [];
  for (const [id, as] of liveWhere)
    if (as.length > 1) dup.push(`${id}: live ${as.length} times: ${as.map((a) => `${a.nodeId}/${a.id}`).join(', ')}`);
  for (const l of ledgers) dup.push(...l.duplicateProblems);
  // Historical: a request id allocated on two nodes at some point (the coordinators' undo releases the loser).
  const ever = new Map<string, string[]>();
  for (const l of ledgers) for (const id of l.everAllocated) ever.set(id, [...(ever.get(id) ?? []), l.nodeId]);
  const undone = [...ever].filter(([, ns]) => ns.length > 1);
  verdicts.push({
    name: 'no request id has two allocations',
    ok: dup.length === 0,
    problems: dup,
    note: `${undone.length} request ids were committed on two nodes and one undone`,
  });

  const unacked = [...liveWhere.keys()].filter((id) => !ops.some((o) => o.kind === 'place' && o.requestId === id && o.outcome === 'acked'));
  const agree: string[] = [];
  for (const l of ledgers) {
    if (l.nodeId === lostNode) continue; // never listed: it does not answer
    const fromEndpoint = new Set((endpoint.get(l.nodeId) ?? []).map((a) => a.id));
    const fromLedger = new Set(l.live.keys());
    const onlyEndpoint = [...fromEndpoint].filter((id) => !fromLedger.has(id));
    const onlyLedger = [...fromLedger].filter((id) => !fromEndpoint.has(id));
    if (onlyEndpoint.length + onlyLedger.length > 0)
      agree.push(`${l.nodeId}: endpoint only ${onlyEndpoint.join(',') || '-'}; ledger only ${onlyLedger.join(',') || '-'}`);
  }
  verdicts.push({
    name: 'ledger files = allocations endpoint',
    ok: agree.length === 0,
    problems: agree,
    note: `${unacked.length} live allocations whose place never got an ok (client gave up or refused): allowed`,
  });

  const cap = ledgers.flatMap((l) => l.capacityProblems);
  verdicts.push({
    name: 'never over-committed (every ledger prefix)',
    ok: cap.length === 0,
    problems: cap,
    note: ledgers
      .map(
        (l) =>
          `${l.nodeId}: ${l.records} records, peak ${l.peak.memoryMiB} MiB / ${l.peak.sharedVcpus} shared vCPUs / ${l.peak.exclusiveCores} exclusive cores`,
      )
      .join('; '),
  });
  return verdicts;
}

/** Per reservation place: how its activate ended (absent: the worker did not activate it). */
function activationOutcomes(ops: OpRecord[]): Map<string, OpRecord['outcome']> {
  const out = new Map<string, OpRecord['outcome']>();
  for (const o of ops) if (o.kind === 'activate' && o.placementRequestId !== undefined) out.set(o.placementRequestId, o.outcome);
  return out;
}

/**
 * No reservation outlives its expiry, and none ends before it unless activated:
 * - `overdue`: live `reserved` allocations the agents listed after their expiresAt (plus the slack), as the scenario saw them;
 * - every acknowledged reservation that was not activated with an ok has an `expired` record on the node the ack named,
 *   for the allocation id it named, at or after its expiresAt (not released, not expired early, not missing);
 * - in every ledger, an activation happens at or before the reservation's expiresAt and an expiry at or after it.
 */
export function auditReservations(ops: OpRecord[], ledgers: LedgerReplay[], overdue: string[], lostNode?: string): Verdict {
  const problems = [...overdue];
  const byNode = new Map(ledgers.map((l) => [l.nodeId, l]));
  const activation = activationOutcomes(ops);
  let acked = 0;
  let activated = 0;
  let expectedExpired = 0;
  for (const o of ops) {
    if (o.kind !== 'place' || o.outcome !== 'acked' || o.reservationTtlMs === undefined) continue;
    acked += 1;
    if (o.nodeId === lostNode) continue; // its host died before it could expire: it ended with the host
    const outcome = activation.get(o.requestId);
    if (outcome === 'acked') {
      activated += 1;
      continue;
    }
    const l = byNode.get(o.nodeId ?? '');
    const id = o.allocationId ?? '';
    const a = l?.byId.get(id);
    if (l === undefined || a === undefined) {
      problems.push(`${o.requestId}: reservation acknowledged as ${o.nodeId}/${id}, which that ledger never held`);
      continue;
    }
    const expired = l.expiredAt.get(id);
    if (outcome === 'timed_out' && expired === undefined && l.activatedAt.has(id)) continue; // the activate did land
    expectedExpired += 1;
    if (expired === undefined)
      problems.push(
        `${o.requestId}: reservation ${l.nodeId}/${id} not activated, yet no expired record (${l.releasedAt.has(id) ? 'released instead' : l.live.has(id) ? 'still live' : 'gone'})`,
      );
  }
  let expiries = 0;
  let latest = 0;
  for (const l of ledgers) {
    for (const [id, at] of l.expiredAt) {
      const expiresAt = l.byId.get(id)?.expiresAt;
      if (expiresAt === undefined) continue;
      expiries += 1;
      latest = Math.max(latest, at - expiresAt);
      if (at < expiresAt) problems.push(`${l.nodeId}/${id}: expired at ${at}, ${expiresAt - at} ms before its expiresAt`);
    }
    for (const [id, at] of l.activatedAt) {
      const expiresAt = l.byId.get(id)?.expiresAt;
      if (expiresAt !== undefined && at > expiresAt)
        problems.push(`${l.nodeId}/${id}: activated at ${at}, ${at - expiresAt} ms after its expiresAt`);
    }
  }
  return {
    name: 'reservations end at their expiry unless activated',
    ok: problems.length === 0,
    problems,
    note: `${acked} acknowledged, ${activated} activated with an ok, ${expectedExpired} left to expire; ${expiries} expired records, the latest ${latest} ms after its expiresAt (an agent down at the time expires on restart)`,
  };
}

export type TenantLimits = { tenantId: string; maxVms?: number; maxVcpus?: number; maxMemoryMiB?: number };

/**
 * No tenant's live allocations ever exceed its limits: every agent's allocation starts and ends merged by time (the
 * agents' clocks are the one host clock here), ends first within one millisecond, counted per tenant.
 */
export function auditTenantLimits(ledgers: LedgerReplay[], limits: TenantLimits[]): Verdict {
  const events: { at: number; kind: 'start' | 'end'; allocation: Allocation }[] = [];
  const endings = new Map(ledgers.flatMap((l) => [...l.endings]));
  for (const l of ledgers) {
    for (const e of l.lifetimes) {
      const allocation = l.byId.get(e.allocationId);
      if (allocation !== undefined) events.push({ at: e.at, kind: e.kind, allocation });
    }
  }
  events.sort((a, b) => a.at - b.at || (a.kind === b.kind ? 0 : a.kind === 'end' ? -1 : 1));
  const live = new Map<string, { vms: number; vcpus: number; memoryMiB: number }>();
  const peak = new Map<string, { vms: number; vcpus: number; memoryMiB: number }>();
  const problems: string[] = [];
  const reported = new Set<string>();
  /** Per tenant, what is live and since when: named when a limit is passed, so the history can be followed. */
  const holding = new Map<string, Map<string, number>>();
  for (const e of events) {
    const t = e.allocation.tenantId;
    const held = holding.get(t) ?? new Map<string, number>();
    holding.set(t, held);
    if (e.kind === 'start')
      held.set(
        `${e.allocation.id} ${e.allocation.requestId}${e.allocation.expiresAt === undefined ? '' : ` (reserved until ${e.allocation.expiresAt})`}`,
        e.at,
      );
    else for (const k of held.keys()) if (k.startsWith(`${e.allocation.id} `)) held.delete(k);
    const now = live.get(t) ?? { vms: 0, vcpus: 0, memoryMiB: 0 };
    const sign = e.kind === 'start' ? 1 : -1;
    now.vms += sign;
    now.vcpus += sign * e.allocation.granted.vcpus;
    now.memoryMiB += sign * e.allocation.granted.memoryMiB;
    live.set(t, now);
    const p = peak.get(t) ?? { vms: 0, vcpus: 0, memoryMiB: 0 };
    peak.set(t, { vms: Math.max(p.vms, now.vms), vcpus: Math.max(p.vcpus, now.vcpus), memoryMiB: Math.max(p.memoryMiB, now.memoryMiB) });
    const limit = limits.find((q) => q.tenantId === t);
    if (limit === undefined || e.kind === 'end') continue;
    for (const [key, max] of [
      ['vms', limit.maxVms],
      ['vcpus', limit.maxVcpus],
      ['memoryMiB', limit.maxMemoryMiB],
    ] as const) {
      if (max === undefined || now[key] <= max || reported.has(`${t}/${key}`)) continue;
      reported.add(`${t}/${key}`);
      // How each one ended tells an orphan (released by the sweep: "orphan: intent ...") from a placement that counted.
      const ending = (label: string) => endings.get(label.slice(0, label.indexOf(' '))) ?? 'still live at the end';
      problems.push(
        `tenant ${t}: ${now[key]} ${key} live at ${e.at} (${e.allocation.nodeId}/${e.allocation.id} ${e.allocation.requestId} began), over its limit ${max}; live then: ${[...held].map(([k, at]) => `${k} since ${at}, ${ending(k)}`).join('; ')}`,
      );
    }
  }
  return {
    name: "no tenant's live allocations exceed its quota, ever",
    ok: problems.length === 0,
    problems,
    note: limits.map((q) => `${q.tenantId} peak ${peak.get(q.tenantId)?.vms ?? 0}/${q.maxVms ?? '-'} VMs`).join(', '),
  };
}
