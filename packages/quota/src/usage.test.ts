import { describe, expect, it } from 'vitest';
import { applyPlacement, applyRelease, emptyUsage } from './usage.ts';

describe('tenant usage', () => {
  it('counts a placement without touching the usage it was given', () => {
    const before = emptyUsage();
    const after = applyPlacement(before, { nodeId: 'n1', memoryMiB: 2048, vcpus: 4 });
    expect(after).toEqual({ vms: 1, vcpus: 4, memoryMiB: 2048, vmsPerNode: { n1: 1 } });
    expect(before).toEqual(emptyUsage());
  });

  it('takes a release away and forgets a node where the tenant holds nothing more', () => {
    const two = applyPlacement(applyPlacement(emptyUsage(), { nodeId: 'n1', memoryMiB: 2048, vcpus: 4 }), {
      nodeId: 'n2',
      memoryMiB: 1024,
      vcpus: 1,
    });
    expect(applyRelease(two, { nodeId: 'n1', memoryMiB: 2048, vcpus: 4 })).toEqual({
      vms: 1,
      vcpus: 1,
      memoryMiB: 1024,
      vmsPerNode: { n2: 1 },
    });
  });

  it('treats a release on a node without the tenant as unknown: the same usage comes back', () => {
    const one = applyPlacement(emptyUsage(), { nodeId: 'n1', memoryMiB: 2048, vcpus: 4 });
    expect(applyRelease(one, { nodeId: 'n9', memoryMiB: 2048, vcpus: 4 })).toBe(one);
    expect(applyRelease(emptyUsage(), { nodeId: 'n1', memoryMiB: 1, vcpus: 1 })).toEqual(emptyUsage());
  });

  it('never goes below zero when a release is larger than what was counted', () => {
    const one = applyPlacement(emptyUsage(), { nodeId: 'n1', memoryMiB: 1024, vcpus: 1 });
    expect(applyRelease(one, { nodeId: 'n1', memoryMiB: 4096, vcpus: 8 })).toEqual(emptyUsage());
  });

  it('throws on fractional or negative figures, which validation should have stopped', () => {
    expect(() => applyPlacement(emptyUsage(), { nodeId: 'n1', memoryMiB: 1.5, vcpus: 1 })).toThrow(RangeError);
    expect(() => applyRelease(emptyUsage(), { nodeId: 'n1', memoryMiB: 1, vcpus: -1 })).toThrow(RangeError);
  });
});
