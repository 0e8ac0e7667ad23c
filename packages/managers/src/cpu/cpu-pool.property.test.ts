import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CPU_POLICIES, CPU_THREAD_POLICIES } from '@allot/core';
import type { CpuGrant, CpuPolicy, CpuThreadPolicy, CpuUsage } from '@allot/core';
import { CpuPool } from './cpu-pool.ts';
import type { CpuPoolChange } from './cpu-pool.ts';
import { twoSocketHost } from './test-support.ts';

type Command =
  | {
      kind: 'take';
      vcpus: number;
      exclusive: boolean;
      numa: 'any' | 'prefer' | 'require';
      reservation: boolean;
      threadPolicy: CpuThreadPolicy | undefined;
      policy: CpuPolicy | undefined;
    }
  | { kind: 'free'; pick: number }
  | { kind: 'activate'; pick: number }
  | { kind: 'reconfigure'; change: CpuPoolChange; force: boolean };

const policy = fc.constantFrom<CpuPolicy>(...CPU_POLICIES);
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('take' as const),
      vcpus: fc.integer({ min: 1, max: 18 }),
      exclusive: fc.boolean(),
      numa: fc.constantFrom('any' as const, 'prefer' as const, 'require' as const),
      reservation: fc.boolean(),
      threadPolicy: fc.constantFrom(undefined, ...CPU_THREAD_POLICIES),
      policy: fc.option(policy, { nil: undefined }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('activate' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('reconfigure' as const),
      change: fc.record(
        {
          overcommitRatio: fc.constantFrom(1, 1.25, 1.5, 2, 3),
          systemReserve: fc.integer({ min: 0, max: 4 }),
          reservedCores: fc.uniqueArray(fc.integer({ min: 0, max: 31 }), { maxLength: 3 }),
          hardLimit: fc.constantFrom(null, 8, 20, 40, 70),
          policy,
        },
        { requiredKeys: [] },
      ),
      force: fc.boolean(),
    }),
  },
);

const physicalOf = (id: number): number => twoSocketHost.cores.find((c) => c.id === id)?.core ?? -1;
const siblingsOf = (id: number): number[] => twoSocketHost.cores.filter((c) => c.core === physicalOf(id)).map((c) => c.id);

interface Live {
  grant: CpuGrant;
  reservation: boolean;
}

/** The capacity exclusive cores removed, computed here from the published formula, not by the pool's own code. */
function exclusiveCost(usage: CpuUsage, ratio: number): number {
  const percent = Math.round(ratio * 100);
  return Math.floor(((usage.capacity - usage.systemReserve) * percent) / 100) - Math.floor((usage.sharedCores * percent) / 100);
}

function isOver(usage: CpuUsage): boolean {
  return usage.sharedVcpusCommitted > usage.sharedVcpusCapacity || usage.committed > usage.effectiveCapacity;
}

function checkInvariants(pool: CpuPool, live: Map<string, Live>): CpuUsage {
  const usage = pool.usage();
  const sharedSum = [...live.values()].filter((l) => l.grant.mode === 'shared').reduce((s, l) => s + l.grant.vcpus, 0);
  expect(usage.sharedVcpusCommitted).toBe(sharedSum);
  expect(usage.committed).toBe(sharedSum + exclusiveCost(usage, pool.limits().overcommitRatio));
  expect(usage.allocationCount).toBe(live.size);
  expect(usage.reserved).toBeLessThanOrEqual(usage.committed);
  if (![...live.values()].some((l) => l.reservation)) expect(usage.reserved).toBe(0);

  // Exclusive cores: in exactly one allocation, never in a shared cpuset, and shown as held by it.
  const holder = new Map<number, string>();
  const sharedCores = new Set<number>();
  for (const [id, l] of live) {
    expect(new Set(l.grant.cpuset).size).toBe(l.grant.vcpus);
    for (const core of [...l.grant.cpuset, ...(l.grant.idleSiblings ?? [])]) {
      if (l.grant.mode === 'exclusive') {
        expect(holder.has(core)).toBe(false);
        holder.set(core, id);
      } else sharedCores.add(core);
    }
  }
  for (const core of holder.keys()) expect(sharedCores.has(core)).toBe(false);
  // isolate and require never split a physical core: every thread of one they touch is theirs (held or in use).
  for (const [id, l] of live) {
    if (l.grant.threadPolicy !== 'isolate' && l.grant.threadPolicy !== 'require') continue;
    for (const core of l.grant.cpuset) for (const thread of siblingsOf(core)) expect(holder.get(thread)).toBe(id);
    if (l.grant.threadPolicy === 'isolate') expect(new Set(l.grant.cpuset.map(physicalOf)).size).toBe(l.grant.vcpus);
  }
  const shownHeld = usage.cores.filter((c) => c.allocationId !== undefined);
  expect(new Map(shownHeld.map((c) => [c.id, c.allocationId]))).toEqual(holder);
  return usage;
}

describe('CpuPool under random sequences', () => {
  it('never over-commits, keeps exclusive cores exclusive, never splits siblings under isolate/require, frees to zero and restores to the same usage', () => {
    fc.assert(
      fc.property(
        policy,
        fc.constantFrom(1, 1.5, 2),
        fc.array(command, { minLength: 1, maxLength: 60 }),
        (initialPolicy, ratio, commands) => {
          const pool = new CpuPool({
            topology: twoSocketHost,
            reservedCores: [],
            systemReserve: 2,
            overcommitRatio: ratio,
            policy: initialPolicy,
          });
          const live = new Map<string, Live>();
          let next = 0;
          for (const c of commands) {
            const before = pool.usage();
            const ids = [...live.keys()];
            if (c.kind === 'take') {
              const id = `a${(next += 1)}`;
              const request = {
                vcpus: c.vcpus,
                exclusive: c.exclusive,
                numa: c.numa,
                threadPolicy: c.exclusive ? c.threadPolicy : undefined,
                policy: c.policy,
              };
              const checked = pool.check(request);
              const taken = pool.take(id, request, { reservation: c.reservation });
              expect(taken.ok).toBe(checked.ok);
              if (taken.ok) {
                expect(isOver(before)).toBe(false); // nothing new while a forced change left it over
                if (checked.ok) expect(taken.value.cpuset).toEqual(checked.value.cpuset);
                const reserved = new Set(before.cores.filter((core) => core.role === 'reserved').map((core) => core.id));
                expect(taken.value.cpuset.some((core) => reserved.has(core))).toBe(false);
                if (c.numa === 'require') expect(taken.value.numaNodes).toHaveLength(1);
                live.set(id, { grant: taken.value, reservation: c.reservation });
                expect(isOver(pool.usage())).toBe(false);
              } else {
                expect(pool.usage()).toEqual(before);
              }
            } else if (c.kind === 'free' && ids.length > 0) {
              const id = ids[c.pick % ids.length] ?? '';
              expect(pool.free(id)).toBe(true);
              expect(pool.free(id)).toBe(false);
              live.delete(id);
            } else if (c.kind === 'activate' && ids.length > 0) {
              const id = ids[c.pick % ids.length] ?? '';
              pool.markActive(id);
              const l = live.get(id);
              if (l) l.reservation = false;
            } else if (c.kind === 'reconfigure') {
              const r = pool.reconfigure(c.change, c.force);
              if (r.ok && !c.force) expect(isOver(pool.usage())).toBe(false);
              if (!r.ok) expect(pool.usage()).toEqual(before);
            }
            checkInvariants(pool, live);
          }

          // Restore every live grant into a fresh pool: reserve nothing while restoring (a forced reconfigure may have
          // reserved cores still held), then apply the same configuration, forced.
          const limits = pool.limits();
          const reservedNow = pool
            .usage()
            .cores.filter((core) => core.role === 'reserved')
            .map((core) => core.id);
          const fresh = new CpuPool({
            topology: twoSocketHost,
            reservedCores: [],
            systemReserve: 0,
            overcommitRatio: limits.overcommitRatio,
            policy: pool.policyName,
          });
          for (const [id, l] of live) expect(fresh.restore(id, l.grant, { reservation: l.reservation }).ok).toBe(true);
          expect(fresh.reconfigure({ reservedCores: reservedNow, hardLimit: limits.hardLimit ?? null }, true).ok).toBe(true);
          expect(fresh.usage()).toEqual(pool.usage());

          for (const id of live.keys()) pool.free(id);
          const empty = pool.usage();
          expect(empty).toMatchObject({ committed: 0, reserved: 0, sharedVcpusCommitted: 0, exclusiveCores: 0, allocationCount: 0 });
          expect(empty.cores.every((core) => core.role !== 'exclusive' && core.allocationId === undefined)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});
