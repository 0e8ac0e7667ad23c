import { unwrap, type Allocation } from '@allot/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from '../cpu/index.ts';
import { ManagerFactory } from '../factory.ts';
import { FakeClock } from '../testing/fake-clock.ts';
import type { HostManager } from './host-manager.ts';
import { MemoryJournal } from './records.ts';

const topology = topologyFixture({ sockets: 1, numaPerSocket: 2, coresPerNuma: 3, threadsPerCore: 1 });

function build(clock: FakeClock, journal: MemoryJournal): HostManager {
  const factory = new ManagerFactory({ topology, clock });
  return unwrap(
    factory
      .host('n1')
      .memory({ capacity: 8192, systemReserve: 1024, overcommitRatio: 1.5 })
      .cpu({ overcommitRatio: 2 }, { reservedCores: [0] })
      .journal(journal)
      .build(),
  );
}

const op = fc.oneof(
  fc.record({
    kind: fc.constant('allocate' as const),
    mem: fc.integer({ min: 0, max: 5000 }),
    vcpus: fc.integer({ min: 0, max: 6 }),
    exclusive: fc.boolean(),
    id: fc.integer({ min: 0, max: 30 }),
  }),
  fc.record({
    kind: fc.constant('reserve' as const),
    mem: fc.integer({ min: 1, max: 3000 }),
    vcpus: fc.integer({ min: 0, max: 3 }),
    ttl: fc.integer({ min: 1, max: 5000 }),
    id: fc.integer({ min: 0, max: 30 }),
  }),
  fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('activate' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 4000 }) }),
  fc.record({ kind: fc.constant('limits' as const), capacity: fc.integer({ min: 2048, max: 12000 }), force: fc.boolean() }),
  fc.record({ kind: fc.constant('restart' as const), viaSnapshot: fc.boolean() }),
);

async function check(h: HostManager): Promise<void> {
  const usage = unwrap(await h.getUsage());
  const live = unwrap(await h.getAllocations());
  const mem = usage.find((u) => u.resourceType === 'memory');
  const cpu = usage.find((u) => u.resourceType === 'cpu');
  expect(mem?.committed).toBe(live.reduce((s, a) => s + a.granted.memoryMiB, 0));
  // CPU: shared vCPUs are counted in the shared pool, exclusive grants as whole cores taken out of it.
  const cpuUsage = cpu as unknown as { sharedVcpusCommitted: number; exclusiveCores: number; committed: number; effectiveCapacity: number };
  expect(cpuUsage.sharedVcpusCommitted).toBe(live.reduce((s, a) => s + (a.cpu?.mode === 'shared' ? a.granted.vcpus : 0), 0));
  expect(cpuUsage.exclusiveCores).toBe(live.reduce((s, a) => s + (a.cpu?.mode === 'exclusive' ? a.cpu.cpuset.length : 0), 0));
  expect(cpuUsage.committed).toBeLessThanOrEqual(cpuUsage.effectiveCapacity);
  const owners = new Map<number, string>();
  for (const a of live) {
    if (a.cpu?.mode !== 'exclusive') continue;
    for (const core of a.cpu.cpuset) {
      expect(owners.get(core), `core ${core} in two exclusive allocations`).toBeUndefined();
      owners.set(core, a.id);
    }
  }
  const cores = unwrap(await h.getUsage()).find((u) => u.resourceType === 'cpu') as unknown as { cores: { id: number; role: string }[] };
  for (const core of cores.cores) if (owners.has(core.id)) expect(core.role).toBe('exclusive');
  const ids = live.map((a) => a.requestId);
  expect(new Set(ids).size).toBe(ids.length);
}

describe('HostManager under random operations', () => {
  it('never over-commits, keeps committed equal to live allocations, never shares an exclusive core, and returns to zero', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        const clock = new FakeClock();
        let journal = new MemoryJournal();
        let h = build(clock, journal);
        const known: Allocation[] = [];
        let n = 0;
        for (const o of ops) {
          n += 1;
          if (o.kind === 'allocate' || o.kind === 'reserve') {
            const before = unwrap(await h.getUsage());
            const request = {
              requestId: `r${o.id}`,
              tenantId: 't',
              resources: { memoryMiB: o.mem, vcpus: o.vcpus },
              cpu: { exclusive: o.kind === 'allocate' && o.exclusive, numa: 'any' as const },
              ...(o.kind === 'reserve' ? { reservation: { ttlMs: o.ttl } } : {}),
            };
            const r = o.kind === 'reserve' ? await h.reserve(request) : await h.allocate(request);
            if (r.ok) {
              known.push(r.value);
              const retry = unwrap(o.kind === 'reserve' ? await h.reserve(request) : await h.allocate(request));
              expect(retry.id).toBe(r.value.id);
              const after = unwrap(await h.getUsage());
              for (const u of after) {
                const b = before.find((x) => x.resourceType === u.resourceType);
                // A new commit never lands above effective capacity (after a forced shrink nothing new is admitted).
                if (b !== undefined && u.committed > b.committed) expect(u.committed).toBeLessThanOrEqual(u.effectiveCapacity);
              }
            }
          } else if (o.kind === 'release' && known.length > 0) {
            const target = known[o.pick % known.length] as Allocation;
            unwrap(await h.release({ requestId: `rel-${n}`, allocationId: target.id }));
          } else if (o.kind === 'activate' && known.length > 0) {
            const target = known[o.pick % known.length] as Allocation;
            const r = await h.activateReservation(target.id, `act-${n}`);
            if (!r.ok) expect(['conflict', 'not_found']).toContain(r.error.code);
          } else if (o.kind === 'advance') {
            clock.advance(o.ms);
          } else if (o.kind === 'limits') {
            const r = await h.updateLimits({ memory: { capacity: o.capacity } }, { force: o.force });
            if (!r.ok) expect(r.error.code).toBe('conflict');
          } else if (o.kind === 'restart') {
            const snapshot = o.viaSnapshot ? unwrap(await h.exportState()) : undefined;
            if (snapshot !== undefined) journal.compact(snapshot);
            await h.stop();
            const durable = await journal.load();
            journal = new MemoryJournal();
            for (const r of durable.records) await journal.append(r);
            if (durable.snapshot !== undefined) journal.compact(durable.snapshot);
            h = build(clock, journal);
            unwrap(await h.restore(durable.snapshot, durable.records));
          }
          await check(h);
        }
        for (const a of unwrap(await h.getAllocations()))
          unwrap(await h.release({ requestId: `final-${a.id.replace(':', '-')}`, allocationId: a.id }));
        const usage = unwrap(await h.getUsage());
        for (const u of usage) expect(u.committed).toBe(0);
      }),
      { numRuns: 150 },
    );
  });
});
