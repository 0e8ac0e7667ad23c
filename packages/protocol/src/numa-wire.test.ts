import { describe, expect, it } from 'vitest';
import { AllocationSchema, UsageSnapshotSchema } from '@allot/core';
import { decode, encode } from './codec.ts';
import { AGENT_ENDPOINTS, PlaceRequestSchema } from './wire.ts';

const request = { requestId: 'req-1', tenantId: 'acme', resources: { memoryMiB: 1024, vcpus: 1 } };

describe('NUMA memory and hugepages on the wire', () => {
  it('a place names a NUMA node and hugepages; a request of hugepages alone asks for something', () => {
    const memory = { numaNode: 1, hugepages: { pageSizeMiB: 1024, count: 2 } };
    const placed = decode(PlaceRequestSchema, encode({ request: { ...request, memory } }));
    expect(placed.ok ? placed.value.request.memory : placed.error.message).toEqual(memory);
    const hugeOnly = { ...request, resources: { memoryMiB: 0, vcpus: 0 }, memory: { hugepages: { pageSizeMiB: 2, count: 1 } } };
    expect(decode(AGENT_ENDPOINTS.allocate.request, encode(hugeOnly)).ok).toBe(true);
  });

  it('refuses a page size the host cannot have and a count that is not a whole positive number', () => {
    for (const hugepages of [
      { pageSizeMiB: 4, count: 1 },
      { pageSizeMiB: 2, count: 0 },
      { pageSizeMiB: 2, count: 1.5 },
    ]) {
      const refused = decode(AGENT_ENDPOINTS.allocate.request, encode({ ...request, memory: { hugepages } }));
      expect(refused.ok ? 'accepted' : refused.error.code).toBe('invalid_request');
    }
    const badNode = decode(AGENT_ENDPOINTS.allocate.request, encode({ ...request, memory: { numaNode: -1 } }));
    expect(badNode.ok ? 'accepted' : badNode.error.message).toMatch(/^memory\.numaNode/);
  });

  it('stays readable across one version: fields a peer does not know are optional or dropped', () => {
    const allocation = {
      id: 'n1:1',
      requestId: 'req-1',
      tenantId: 'acme',
      nodeId: 'n1',
      request: { ...request, priority: 0, cpu: { exclusive: false, numa: 'any' }, metadata: {} },
      granted: request.resources,
      cpu: null,
      status: 'active',
      priority: 0,
      createdAt: 1,
      updatedAt: 1,
    };
    // An older agent's allocation (no memory grant) is read by this version.
    expect(AllocationSchema.safeParse(allocation).success).toBe(true);
    // This version's grant is dropped, not refused, by a reader that does not know it (zod objects strip unknown keys).
    const older = AllocationSchema.omit({ memory: true });
    const read = older.safeParse({ ...allocation, memory: { numaNode: 0 } });
    expect(read.success && !('memory' in read.data)).toBe(true);
    expect(UsageSnapshotSchema.shape.memory.shape.numa.safeParse(undefined).success).toBe(true);
  });
});
