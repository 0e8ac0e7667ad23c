import { z } from 'zod';
import { PrioritySchema, type Allocation } from './domain.ts';

/*
 * What a node's preemptible allocations hold, per priority level: what the coordinators' preemption post-filter reads
 * to tell, for any node and without asking its agent, how much room evicting everything below a preemptor's priority
 * would free (docs/architecture.md, "Preemption").
 */

/** Most priority levels one snapshot lists; beyond it neighbouring levels are merged upward (see priorityUsage). */
export const MAX_PRIORITY_LEVELS = 32;

/** The capacity held by one priority level's preemptible allocations (active or reserved; not those already releasing). */
export const PriorityUsageSchema = z.object({
  priority: PrioritySchema,
  vms: z.int().min(1),
  memoryMiB: z.int().min(0),
  /** vCPUs of shared-mode allocations. */
  sharedVcpus: z.int().min(0),
  /** Cores held by exclusive-mode allocations (they go back to the shared pool when released). */
  exclusiveCores: z.int().min(0),
});
export type PriorityUsage = z.infer<typeof PriorityUsageSchema>;

export const PriorityUsageListSchema = z.array(PriorityUsageSchema).max(MAX_PRIORITY_LEVELS);

/** The capacity one allocation gives back when released, as the preemption arithmetic counts it. */
export function preemptibleShare(a: Allocation): { memoryMiB: number; sharedVcpus: number; exclusiveCores: number } {
  if (a.cpu?.mode === 'exclusive')
    return { memoryMiB: a.granted.memoryMiB, sharedVcpus: 0, exclusiveCores: a.cpu.cpuset.length || a.granted.vcpus };
  return { memoryMiB: a.granted.memoryMiB, sharedVcpus: a.granted.vcpus, exclusiveCores: 0 };
}

/**
 * Per-priority totals of the live allocations a preemption may evict, ascending by priority. O(n) for n allocations.
 * Past MAX_PRIORITY_LEVELS the two closest levels are merged into the higher one until it fits: an allocation may then
 * look more important than it is (never less), so a planner reading this never counts on evicting what it may not.
 */
export function priorityUsage(allocations: Iterable<Allocation>): PriorityUsage[] {
  const byLevel = new Map<number, PriorityUsage>();
  for (const a of allocations) {
    if (a.status !== 'active' && a.status !== 'reserved') continue;
    const share = preemptibleShare(a);
    const level = byLevel.get(a.priority);
    if (level === undefined) byLevel.set(a.priority, { priority: a.priority, vms: 1, ...share });
    else
      byLevel.set(a.priority, {
        priority: a.priority,
        vms: level.vms + 1,
        memoryMiB: level.memoryMiB + share.memoryMiB,
        sharedVcpus: level.sharedVcpus + share.sharedVcpus,
        exclusiveCores: level.exclusiveCores + share.exclusiveCores,
      });
  }
  const levels = [...byLevel.values()].sort((x, y) => x.priority - y.priority);
  while (levels.length > MAX_PRIORITY_LEVELS) {
    let at = 0;
    for (let i = 1; i + 1 < levels.length; i += 1)
      if (
        (levels[i + 1] as PriorityUsage).priority - (levels[i] as PriorityUsage).priority <
        (levels[at + 1] as PriorityUsage).priority - (levels[at] as PriorityUsage).priority
      )
        at = i;
    const low = levels[at] as PriorityUsage;
    const high = levels[at + 1] as PriorityUsage;
    levels.splice(at, 2, {
      priority: high.priority,
      vms: low.vms + high.vms,
      memoryMiB: low.memoryMiB + high.memoryMiB,
      sharedVcpus: low.sharedVcpus + high.sharedVcpus,
      exclusiveCores: low.exclusiveCores + high.exclusiveCores,
    });
  }
  return levels;
}
