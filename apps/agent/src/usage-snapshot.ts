import { createHash } from 'node:crypto';
import type { CoreState, CpuUsage, Health, NumaCores, ResourceUsage, UsageSnapshot } from '@allot/core';
import type { HostView } from '@allot/managers';

/** What the agent knows about itself besides the managers' view. */
export interface SnapshotContext {
  readonly nodeId: string;
  readonly bootId: string;
  readonly labels: Record<string, string>;
  readonly heartbeatMs: number;
  /** Announced when set (config idleStatusMs): coordinators that watch the node leases then judge the node by them. */
  readonly idleStatusMs?: number;
  readonly overcommit: { readonly memory: number; readonly cpu: number };
}

function isCpuUsage(usage: ResourceUsage): usage is CpuUsage {
  return usage.resourceType === 'cpu' && Array.isArray((usage as Partial<CpuUsage>).cores);
}

/**
 * The usage snapshot the coordinator's cluster view is built from: one consistent host view (taken in one turn of the
 * host manager, so committed figures, counts and seq agree) plus the agent's identity, labels and health.
 */
export function buildUsageSnapshot(view: HostView, health: Health, ctx: SnapshotContext, now: number): UsageSnapshot {
  const memory = view.usage.find((u) => u.resourceType === 'memory');
  const cpu = view.usage.find(isCpuUsage);
  if (memory === undefined || cpu === undefined) throw new Error('host view lacks memory or cpu usage');
  const extra = view.usage.filter((u) => u.resourceType !== 'memory' && u.resourceType !== 'cpu');
  return {
    nodeId: ctx.nodeId,
    bootId: ctx.bootId,
    seq: view.seq,
    at: now,
    labels: ctx.labels,
    cordoned: view.cordoned,
    health,
    memory,
    cpu: { ...cpu, coresDigest: coresDigest(cpu.cores), numa: cpu.numa ?? numaCores(cpu.cores) },
    ...(extra.length > 0 ? { extra } : {}),
    overcommit: { memory: ctx.overcommit.memory, cpu: ctx.overcommit.cpu },
    tenants: view.tenants,
    groups: view.groups,
    allocationCount: view.allocationCount,
    priorities: view.priorities,
    heartbeatMs: ctx.heartbeatMs,
    ...(ctx.idleStatusMs === undefined ? {} : { idleStatusMs: ctx.idleStatusMs }),
  };
}

/** A digest of the per-core layout: each core's id, place, role and holder; utilization changes do not change it. */
function coresDigest(cores: readonly CoreState[]): string {
  const hash = createHash('sha256');
  for (const c of cores) hash.update(`${c.id},${c.core},${c.numa},${c.socket},${c.role},${c.allocationId ?? ''};`);
  return hash.digest('base64url').slice(0, 22);
}

/** Cores by role per NUMA node, ascending by node, when the CPU manager did not count them. */
function numaCores(cores: readonly CoreState[]): NumaCores[] {
  const byNode = new Map<number, NumaCores>();
  for (const c of cores) {
    const n = byNode.get(c.numa) ?? { node: c.numa, sharedCores: 0, exclusiveCores: 0, reservedCores: 0 };
    if (c.role === 'shared') n.sharedCores += 1;
    else if (c.role === 'exclusive') n.exclusiveCores += 1;
    else n.reservedCores += 1;
    byNode.set(c.numa, n);
  }
  return [...byNode.values()].sort((a, b) => a.node - b.node);
}

/** The per-core list goes out at least this often even when its layout did not change (see CoreListElision). */
const CORE_LIST_REFRESH_MS = 60_000;

/** With a raised idle status, the list's refresh period is this many idle periods (see coreListRefreshMs). */
const IDLE_STATUSES_PER_CORE_LIST = 5;

/**
 * How often an unchanged host's per-core list goes out: every 60 s, or every five idle periods when that is longer
 * (with a 60 s idle status: 5 min, the kubelet's nodeStatusReportFrequency). A cold-started coordinator replays each node's last stored status:
 * when each idle status carried the list, 10,000 idle hosts made it take in 46 MB of full snapshots (127 µs each)
 * instead of 8 MB of heartbeats (26 µs); the lists it then lacks come with the next change, refresh or node read.
 */
export function coreListRefreshMs(idleStatusMs: number): number {
  return Math.max(CORE_LIST_REFRESH_MS, IDLE_STATUSES_PER_CORE_LIST * idleStatusMs);
}

/**
 * Leaves the per-core list (four fifths of a 64-core snapshot's bytes, and of a coordinator's cost to take it in) out of
 * the heartbeats of a host whose cores did not change hands: the coordinators keep the list they last received under
 * the same `coresDigest`. The list goes out whenever its digest differs from the last one the stream stored, and at
 * least every `refreshMs`: its utilization figures refresh then, and a coordinator that started since (its replay
 * holds each node's last message only) gets the list. Publishes come on the publish loop's ticks (`tickMs`, the
 * heartbeat), so a refresh due before the next tick goes now: with idle status every 60 s (IdleStatus) and the refresh
 * every 5 min (coreListRefreshMs), every fifth idle status carries the list. Times are monotonic milliseconds.
 */
export class CoreListElision {
  readonly #refreshMs: number;
  readonly #tickMs: number;
  #storedDigest: string | undefined;
  #storedAt = Number.NEGATIVE_INFINITY;

  constructor(refreshMs = CORE_LIST_REFRESH_MS, tickMs = 0) {
    this.#refreshMs = refreshMs;
    this.#tickMs = tickMs;
  }

  /** The snapshot to publish now: `snapshot` itself, or the same without its per-core list. */
  forPublish(snapshot: UsageSnapshot, now: number): UsageSnapshot {
    const digest = snapshot.cpu.coresDigest;
    const refreshDue = now - this.#storedAt + this.#tickMs >= this.#refreshMs;
    if (digest === undefined || digest !== this.#storedDigest || refreshDue) return snapshot;
    return { ...snapshot, cpu: { ...snapshot.cpu, cores: [] } };
  }

  /** Tells that the stream stored `published` (what forPublish returned). */
  published(published: UsageSnapshot, now: number): void {
    if (published.cpu.cores.length === 0) return;
    this.#storedDigest = published.cpu.coresDigest;
    this.#storedAt = now;
  }
}

/**
 * Status on change, and when idle only every `idleStatusMs` (the kubelet's NodeStatus beside its Lease): liveness is the
 * node lease the agent renews every 5 s, which coordinators of this release watch, so an idle host need not send its
 * status every heartbeat. The publish loop ticks every heartbeat; a tick sends the status when something changed since
 * the last one stored (a change the agent announced: an allocation, a cordon, a reload, a reconnect; or the health),
 * else once `idleStatusMs` has passed (a period due before the next tick goes now, so equal periods change nothing).
 */
export class IdleStatus {
  readonly #idleStatusMs: number;
  readonly #tickMs: number;
  #change: number | undefined;
  #health: string | undefined;
  #at = Number.NEGATIVE_INFINITY;

  constructor(idleStatusMs: number, tickMs: number) {
    this.#idleStatusMs = idleStatusMs;
    this.#tickMs = tickMs;
  }

  /** Whether to send `snapshot` now; `change` counts the changes announced so far. */
  due(snapshot: UsageSnapshot, change: number, now: number): boolean {
    if (change !== this.#change || JSON.stringify(snapshot.health) !== this.#health) return true;
    return now - this.#at + this.#tickMs >= this.#idleStatusMs;
  }

  /** Tells that the stream stored the status of `snapshot`, built after `change` changes. */
  published(snapshot: UsageSnapshot, change: number, now: number): void {
    this.#change = change;
    this.#health = JSON.stringify(snapshot.health);
    this.#at = now;
  }
}
