import type { NodeView, UsageSnapshot } from '@allot/core';
import { formatMemoryTriple } from '../format/units.ts';
import { renderNodes } from './nodes.ts';

/** The coordinator's default thresholds: a node is suspect after 3 missed heartbeats, lost after 30 s. */
const LOST_AFTER_MS = 30_000;

/** A node as this terminal sees it from its snapshots alone (no coordinator needed to watch). */
export function viewOf(snapshot: UsageSnapshot, receivedAt: number, now: number): NodeView {
  const age = now - receivedAt;
  const liveness = age > LOST_AFTER_MS ? 'lost' : age > 3 * snapshot.heartbeatMs ? 'suspect' : 'ready';
  return { nodeId: snapshot.nodeId, liveness, lastSeen: receivedAt, snapshot };
}

/** One frame of `allot watch`: the cluster totals, then the nodes table. */
export function renderWatchFrame(latest: ReadonlyMap<string, { snapshot: UsageSnapshot; receivedAt: number }>, now: number): string {
  const views = [...latest.values()].map((l) => viewOf(l.snapshot, l.receivedAt, now));
  const sum = (f: (s: UsageSnapshot) => number) => views.reduce((n, v) => n + f(v.snapshot), 0);
  const ready = views.filter((v) => v.liveness === 'ready').length;
  const header = [
    `allot watch  ${new Date(now).toISOString()}  (Ctrl-C exits)`,
    `cluster: ${views.length} nodes (${ready} ready), ${sum((s) => s.allocationCount)} allocations`,
    `memory c/e/u: ${formatMemoryTriple(
      sum((s) => s.memory.committed),
      sum((s) => s.memory.effectiveCapacity),
      sum((s) => s.memory.used),
    )}   ` + `vCPU c/e/u: ${sum((s) => s.cpu.committed)}/${sum((s) => s.cpu.effectiveCapacity)}/${sum((s) => s.cpu.used)}`,
    '',
  ];
  return [...header, renderNodes(views, now)].join('\n');
}
