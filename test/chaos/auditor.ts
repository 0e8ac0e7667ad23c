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
  capacityProblems: string[];
  duplicateProblems: string[];
  peak: { memoryMiB: number; sharedVcpus: number; exclusiveCores: number };
};

/** floor(amount x ratio) with the ratio as an integer percentage, as the managers apply it. */
function scaled(amount: number, ratio: number): number {
  return Math.floor((amount * Math.round(ratio * 100)) / 100);
}

/** Loads a copied state dir and replays it, checking the invariants after every record (every prefix of the ledger). */
export async function replayLedger(stateDir: string, host: HostSpec): Promise<LedgerReplay> {
  // The agent keeps its ledger in <stateDir>/ledger; openLedger would create an empty one where there is none.
  const dir = join(stateDir, 'ledger');
  if (!existsSync(dir)) throw new Error(`${host.nodeId}: no ledger in the copied state dir ${stateDir}`);
  await rm(join(dir, 'LOCK'), { force: true });
  const opened = await openLedger<unknown, unknown>(dir);
  try {
    const out: LedgerReplay = {
      nodeId: host.nodeId,
      records: opened.records.length,
      snapshotSeq: opened.snapshot?.seq ?? 0,
      live: new Map(),
      everAllocated: new Set(),
      capacityProblems: [],
      duplicateProblems: [],
      peak: { memoryMiB: 0, sharedVcpus: 0, exclusiveCores: 0 },
    };
    let snapshot: HostStateSnapshot | undefined;
    if (opened.snapshot !== undefined) {
      snapshot = HostStateSnapshotSchema.parse(opened.snapshot.state);
      for (const a of snapshot.live) out.live.set(a.id, a);
      for (const a of snapshot.live) out.everAllocated.add(a.requestId);
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
      if (shared > sharedCap) out.capacityProblems.push(`${where}: shared vCPUs ${shared} > shared capacity ${sharedCap} (${host.cores - exclusiveOwner.size} shared cores x ${host.cpuOvercommit})`);
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
      apply(out, r);
      check(`${host.nodeId} record ${seq} (${r.kind})`);
    }
    return out;
  } finally {
    await opened.ledger.close();
  }
}

function apply(out: LedgerReplay, r: HostRecord): void {
  switch (r.kind) {
    case 'allocated':
    case 'reserved':
      if (out.live.has(r.allocation.id)) out.duplicateProblems.push(`record ${r.seq}: allocation id ${r.allocation.id} allocated twice`);
      out.live.set(r.allocation.id, r.allocation);
      out.everAllocated.add(r.allocation.requestId);
      break;
    case 'activated': {
      const a = out.live.get(r.allocationId);
      if (a !== undefined) out.live.set(a.id, { ...a, status: 'active' });
      break;
    }
    case 'released':
    case 'expired':
      out.live.delete(r.allocationId);
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
export function auditReplies(ops: OpRecord[], ledgers: LedgerReplay[], endpoint: Map<string, Allocation[]>): Verdict[] {
  const verdicts: Verdict[] = [];
  const liveWhere = new Map<string, Allocation[]>();
  for (const l of ledgers) for (const a of l.live.values()) liveWhere.set(a.requestId, [...(liveWhere.get(a.requestId) ?? []), a]);

  const releasedOk = new Set(ops.filter((o) => o.kind === 'release' && o.outcome === 'acked').map((o) => o.placementRequestId));
  const releaseUnsure = new Set(ops.filter((o) => o.kind === 'release' && o.outcome !== 'acked').map((o) => o.placementRequestId));
  const lost: string[] = [];
  for (const o of ops) {
    if (o.kind !== 'place' || o.outcome !== 'acked') continue;
    const okReplies = o.replies.filter((r) => r.ok);
    if (new Set(okReplies.map((r) => `${r.nodeId}/${r.allocationId}`)).size > 1) lost.push(`${o.requestId}: ok replies disagree: ${okReplies.map((r) => `${r.nodeId}/${r.allocationId}`).join(' vs ')}`);
    const found = liveWhere.get(o.requestId) ?? [];
    if (releasedOk.has(o.requestId)) {
      if (found.length > 0) lost.push(`${o.requestId}: released with ok, still live on ${found.map((a) => a.nodeId).join(', ')}`);
      continue;
    }
    if (releaseUnsure.has(o.requestId) && found.length === 0) continue; // a release without an answer may have happened
    if (found.length !== 1 || found[0]?.nodeId !== o.nodeId || found[0]?.id !== o.allocationId) {
      lost.push(`${o.requestId}: acknowledged on ${o.nodeId} as ${o.allocationId}; agents hold ${found.map((a) => `${a.nodeId}/${a.id}`).join(', ') || 'nothing'}`);
    }
  }
  verdicts.push({ name: 'nothing acknowledged is lost', ok: lost.length === 0, problems: lost });

  const dup: string[] = [];
  for (const [id, as] of liveWhere) if (as.length > 1) dup.push(`${id}: live ${as.length} times: ${as.map((a) => `${a.nodeId}/${a.id}`).join(', ')}`);
  for (const l of ledgers) dup.push(...l.duplicateProblems);
  // Historical: a request id allocated on two nodes at some point (the coordinators' undo releases the loser).
  const ever = new Map<string, string[]>();
  for (const l of ledgers) for (const id of l.everAllocated) ever.set(id, [...(ever.get(id) ?? []), l.nodeId]);
  const undone = [...ever].filter(([, ns]) => ns.length > 1);
  verdicts.push({ name: 'no request id has two allocations', ok: dup.length === 0, problems: dup, note: `${undone.length} request ids were committed on two nodes and one undone` });

  const unacked = [...liveWhere.keys()].filter((id) => !ops.some((o) => o.kind === 'place' && o.requestId === id && o.outcome === 'acked'));
  const agree: string[] = [];
  for (const l of ledgers) {
    const fromEndpoint = new Set((endpoint.get(l.nodeId) ?? []).map((a) => a.id));
    const fromLedger = new Set(l.live.keys());
    const onlyEndpoint = [...fromEndpoint].filter((id) => !fromLedger.has(id));
    const onlyLedger = [...fromLedger].filter((id) => !fromEndpoint.has(id));
    if (onlyEndpoint.length + onlyLedger.length > 0) agree.push(`${l.nodeId}: endpoint only ${onlyEndpoint.join(',') || '-'}; ledger only ${onlyLedger.join(',') || '-'}`);
  }
  verdicts.push({ name: 'ledger files = allocations endpoint', ok: agree.length === 0, problems: agree, note: `${unacked.length} live allocations whose place never got an ok (client gave up or refused): allowed` });

  const cap = ledgers.flatMap((l) => l.capacityProblems);
  verdicts.push({
    name: 'never over-committed (every ledger prefix)',
    ok: cap.length === 0,
    problems: cap,
    note: ledgers.map((l) => `${l.nodeId}: ${l.records} records, peak ${l.peak.memoryMiB} MiB / ${l.peak.sharedVcpus} shared vCPUs / ${l.peak.exclusiveCores} exclusive cores`).join('; '),
  });
  return verdicts;
}
