import { describe, expect, it } from 'vitest';
import type { HostAnswers, ResourceManager, ScopeAnswers } from '../resource-manager.ts';
import type { Allocation, AllocationRequestInput } from '../domain.ts';
import { unwrap } from '../errors.ts';

/** One manager under the contract, started, with room for `memoryMiB` of memory and at least 2 vCPUs on `node`. */
export interface ContractSubject<A extends ScopeAnswers = HostAnswers> {
  readonly manager: ResourceManager<A>;
  /** The plain facts in this scope's answers (a host's are the plain shapes; the cluster's carry them). */
  readonly read: ScopeReader<A>;
  /** The node whose limits getLimits/updateLimits address (the host itself at host scope). */
  readonly node: string;
  /** Memory a single allocation can take at most (the node's effective memory). */
  readonly memoryMiB: number;
  /** Brings derived views up to date after a change (the cluster's view of the agents' snapshots); a no-op on a host. */
  settle(): void;
}

export interface ScopeReader<A extends ScopeAnswers> {
  allocation(placed: A['placed']): Allocation;
  committedMemoryMiB(usage: A['usage']): number;
  allocations(listing: A['listing']): Allocation[];
}

/** How the host's plain answers are read. */
export const hostReader: ScopeReader<HostAnswers> = {
  allocation: (a) => a,
  committedMemoryMiB: (usage) => usage.find((u) => u.resourceType === 'memory')?.committed ?? Number.NaN,
  allocations: (list) => list,
};

const vm = (requestId: string, memoryMiB: number, vcpus = 1): AllocationRequestInput => ({
  requestId,
  tenantId: 'acme',
  resources: { memoryMiB, vcpus },
});

/**
 * The ResourceManager contract as a user of either scope sees it: the same cases run against the agent's HostManager
 * and the coordinator's ClusterManager (allocate = place there). `make` builds a fresh, started subject per case.
 */
export function resourceManagerContract<A extends ScopeAnswers>(scope: string, make: () => Promise<ContractSubject<A>>): void {
  const committedMemory = async (s: ContractSubject<A>): Promise<number> => {
    s.settle();
    return s.read.committedMemoryMiB(unwrap(await s.manager.getUsage()));
  };
  const allocate = async (s: ContractSubject<A>, request: AllocationRequestInput): Promise<Allocation> =>
    s.read.allocation(unwrap(await s.manager.allocate(request)));
  const live = async (s: ContractSubject<A>): Promise<Allocation[]> =>
    s.read.allocations(unwrap(await s.manager.getAllocations({ status: 'live' })));

  describe(`ResourceManager contract (${scope})`, () => {
    it('allocates, shows the allocation in usage and in the live list, and releases it', async () => {
      const s = await make();
      const before = await committedMemory(s);
      const a = await allocate(s, vm('vm-1', 1024, 2));
      expect({ requestId: a.requestId, status: a.status, granted: a.granted.memoryMiB }).toEqual({
        requestId: 'vm-1',
        status: 'active',
        granted: 1024,
      });
      expect(await committedMemory(s)).toBe(before + 1024);
      expect((await live(s)).map((x) => x.id)).toContain(a.id);
      const released = unwrap(await s.manager.release({ requestId: 'rel-1', allocationRequestId: 'vm-1' }));
      expect(released.status).toBe('released');
      expect(await committedMemory(s)).toBe(before);
    });

    it('answers the same allocation to a retry of the request id, and conflict to another request under that id', async () => {
      const s = await make();
      const first = await allocate(s, vm('vm-1', 1024));
      const retry = await allocate(s, vm('vm-1', 1024));
      expect(retry.id).toBe(first.id);
      const other = await s.manager.allocate(vm('vm-1', 2048));
      expect(!other.ok && other.error.code).toBe('conflict');
      expect((await live(s)).filter((x) => x.requestId === 'vm-1')).toHaveLength(1);
    });

    it('releasing what is already released succeeds and changes nothing', async () => {
      const s = await make();
      unwrap(await s.manager.allocate(vm('vm-1', 1024)));
      unwrap(await s.manager.release({ requestId: 'rel-1', allocationRequestId: 'vm-1' }));
      const after = await committedMemory(s);
      expect(unwrap(await s.manager.release({ requestId: 'rel-1', allocationRequestId: 'vm-1' })).status).toBe('released');
      expect(await committedMemory(s)).toBe(after);
    });

    it('refuses what does not fit with insufficient_capacity, and a check says so without committing', async () => {
      const s = await make();
      const before = await committedMemory(s);
      expect(unwrap(await s.manager.checkAvailability(vm('probe-1', 1024))).fits).toBe(true);
      const check = unwrap(await s.manager.checkAvailability(vm('probe-2', s.memoryMiB + 1)));
      expect({ fits: check.fits, code: check.reason?.code }).toEqual({ fits: false, code: 'insufficient_capacity' });
      const refused = await s.manager.allocate(vm('vm-big', s.memoryMiB + 1));
      expect(!refused.ok && refused.error.code).toBe('insufficient_capacity');
      expect(await committedMemory(s)).toBe(before);
    });

    it('reserves capacity until activated, and refuses a reservation without a ttl', async () => {
      const s = await make();
      const before = await committedMemory(s);
      const held = s.read.allocation(unwrap(await s.manager.reserve({ ...vm('vm-r', 1024), reservation: { ttlMs: 60_000 } })));
      expect(held.status).toBe('reserved');
      expect(await committedMemory(s)).toBe(before + 1024);
      expect(unwrap(await s.manager.activateReservation(held.id, 'act-1')).status).toBe('active');
      const bare = await s.manager.reserve(vm('vm-bare', 1024));
      expect(!bare.ok && bare.error.code).toBe('invalid_request');
    });

    it('is healthy while running and says stopped after stop', async () => {
      const s = await make();
      expect(unwrap(await s.manager.healthCheck()).status).toBe('healthy');
      unwrap(await s.manager.stop());
      expect(unwrap(await s.manager.healthCheck()).status).toBe('stopped');
    });

    it("reads and patches the node's limits, refusing a shrink below what is committed unless forced", async () => {
      const s = await make();
      const limits = unwrap(await s.manager.getLimits({ node: s.node }));
      const capacity = limits.memory?.capacity ?? 0;
      expect(capacity).toBeGreaterThanOrEqual(s.memoryMiB);
      unwrap(await s.manager.allocate(vm('vm-1', 1024)));
      const refused = await s.manager.updateLimits({ memory: { capacity: 512 } }, { node: s.node });
      expect(!refused.ok && refused.error.code).toBe('conflict');
      expect(unwrap(await s.manager.getLimits({ node: s.node })).memory?.capacity).toBe(capacity);
      expect(unwrap(await s.manager.updateLimits({ memory: { capacity: 512 } }, { node: s.node, force: true })).memory?.capacity).toBe(512);
      const grown = unwrap(await s.manager.updateLimits({ memory: { capacity: capacity + 1024 } }, { node: s.node }));
      expect(grown.memory?.capacity).toBe(capacity + 1024);
      expect(unwrap(await s.manager.getLimits({ node: s.node })).memory?.capacity).toBe(capacity + 1024);
    });
  });
}
