import { describe, expect, it } from 'vitest';
import type { Allocation } from './domain.ts';
import { MAX_PRIORITY_LEVELS, PriorityUsageListSchema, priorityUsage } from './priority-usage.ts';

function held(id: number, priority: number, memoryMiB: number, vcpus: number, more: Partial<Allocation> = {}): Allocation {
  return {
    id: `n:${id}`,
    requestId: `r${id}`,
    tenantId: 't',
    nodeId: 'n',
    request: {
      requestId: `r${id}`,
      tenantId: 't',
      resources: { memoryMiB, vcpus },
      priority,
      cpu: { exclusive: false, numa: 'any' },
      metadata: {},
    },
    granted: { memoryMiB, vcpus },
    cpu: null,
    status: 'active',
    priority,
    createdAt: 1,
    updatedAt: 1,
    ...more,
  };
}

describe('priorityUsage', () => {
  it('sums what each priority level holds, ascending, counting exclusive cores apart and leaving out what is already going', () => {
    const exclusive = held(3, 0, 1024, 2, {
      cpu: { mode: 'exclusive', vcpus: 2, cpuset: [4, 5], numaNodes: [0], numaFallback: false, policy: 'first-fit' },
    });
    const levels = priorityUsage([
      held(1, 20, 2048, 2),
      held(2, 0, 1024, 1, { status: 'reserved' }),
      exclusive,
      held(4, 0, 4096, 4, { status: 'releasing' }),
      held(5, 20, 512, 1, { status: 'released' }),
    ]);
    expect(levels).toEqual([
      { priority: 0, vms: 2, memoryMiB: 2048, sharedVcpus: 1, exclusiveCores: 2 },
      { priority: 20, vms: 1, memoryMiB: 2048, sharedVcpus: 2, exclusiveCores: 0 },
    ]);
  });

  it('past the bound merges the closest levels into the higher one, so no allocation ever looks less important', () => {
    const many = Array.from({ length: 100 }, (_, i) => held(i, i * 10, 100, 1));
    const levels = priorityUsage(many);
    expect(levels).toHaveLength(MAX_PRIORITY_LEVELS);
    expect(PriorityUsageListSchema.safeParse(levels).success).toBe(true);
    expect(levels.reduce((s, l) => s + l.vms, 0)).toBe(100);
    // Every allocation is counted at its own priority or above it.
    let below = 0;
    for (const l of levels) {
      below += l.vms;
      expect(below).toBeLessThanOrEqual(many.filter((a) => a.priority <= l.priority).length);
    }
    expect(levels.at(-1)?.priority).toBe(990);
  });
});
