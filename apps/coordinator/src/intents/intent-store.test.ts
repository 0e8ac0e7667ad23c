import { AllocationRequestSchema, errorOf, TenantQuotaSchema } from '@allot/core';
import type { PlaceReply } from '@allot/protocol';
import { describe, expect, it } from 'vitest';
import { MemoryBucket } from '../store/memory-bucket.ts';
import { IntentStore, type NewIntent } from './intent-store.ts';

const DAY = 24 * 3_600_000;

function setup() {
  let now = 1_000_000;
  const clock = { wall: () => now, monotonic: () => now };
  const bucket = new MemoryBucket({ now: () => now });
  const store = (id: string) => new IntentStore(bucket, { coordinatorId: id, clock, finishedTtlMs: 7 * DAY });
  return { bucket, store, advance: (ms: number) => (now += ms) };
}

function intent(requestId: string, nodeId = 'a', tenantId = 'acme'): NewIntent {
  return { requestId, tenantId, hash: 'h'.repeat(64), nodeId, memoryMiB: 256, vcpus: 2 };
}

const allocation = {
  id: 'a:1',
  requestId: 'placed',
  tenantId: 'acme',
  nodeId: 'a',
  request: AllocationRequestSchema.parse({ requestId: 'placed', tenantId: 'acme', resources: { memoryMiB: 256, vcpus: 2 } }),
  granted: { memoryMiB: 256, vcpus: 2 },
  cpu: null,
  status: 'active' as const,
  priority: 0,
  createdAt: 1,
  updatedAt: 1,
};
const reply: PlaceReply = { nodeId: 'a', allocation, cpuset: [], preempted: [], attempts: 1 };

async function vms(store: IntentStore, tenantId = 'acme'): Promise<number> {
  const u = await store.usage(tenantId);
  if (!u.ok) throw new Error(u.error.message);
  return u.value?.value.usage.vms ?? 0;
}

describe('IntentStore', () => {
  it('counts pending and placed intents, not failed or released ones, in the same write as the transition', async () => {
    const { store } = setup();
    const s = store('c1');
    const one = await s.create(intent('r1'));
    const two = await s.create(intent('r2', 'b'));
    if (!one.ok || !two.ok) throw new Error('create failed');
    expect(await vms(s)).toBe(2);
    const placed = await s.placed(one.value, reply);
    if (!placed.ok) throw new Error(placed.error.message);
    expect(await vms(s)).toBe(2);
    expect((await s.failed(two.value, errorOf('insufficient_capacity', 'full'))).ok).toBe(true);
    expect(await vms(s)).toBe(1);
    expect((await s.released(placed.value, 'tenant')).ok).toBe(true);
    const u = await s.usage('acme');
    expect(u.ok && u.value?.value.usage).toEqual({ vms: 0, vcpus: 0, memoryMiB: 0, vmsPerNode: {} });
  });

  it('never admits past the quota, whichever coordinator admits, even when each holds a stale copy of the record', async () => {
    const { store } = setup();
    const c1 = store('c1');
    const c2 = store('c2');
    expect((await c1.setQuota(TenantQuotaSchema.parse({ tenantId: 'acme', maxVms: 3 }))).ok).toBe(true);
    // Both coordinators see the record once (a watched copy), then admit concurrently.
    await c1.usage('acme');
    await c2.usage('acme');
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? c1 : c2).create(intent(`r${i}`))));
    expect(results.filter((r) => r.ok)).toHaveLength(3);
    expect(results.filter((r) => !r.ok).map((r) => !r.ok && r.error.code)).toEqual(Array(5).fill('quota_exceeded'));
    expect(await vms(c1)).toBe(3);
  });

  it('moves the per-node count with the intent and refuses a move past maxVmsPerNode', async () => {
    const { store } = setup();
    const s = store('c1');
    await s.setQuota(TenantQuotaSchema.parse({ tenantId: 'acme', maxVmsPerNode: 1 }));
    const onB = await s.create(intent('r0', 'b'));
    const r = await s.create(intent('r1', 'a'));
    if (!r.ok || !onB.ok) throw new Error('create failed');
    const blocked = await s.drive(r.value, { nodeId: 'b' });
    expect(!blocked.ok && blocked.error.details?.['limit']).toBe('maxVmsPerNode');
    const moved = await s.drive(r.value, { nodeId: 'c' });
    if (!moved.ok) throw new Error(moved.error.message);
    expect(moved.value.value).toMatchObject({ nodeId: 'c', attempt: 2, refusedBy: ['a'] });
    const u = await s.usage('acme');
    expect(u.ok && u.value?.value.usage.vmsPerNode).toEqual({ b: 1, c: 1 });
  });

  it('answers conflict to a transition from a revision someone else has moved past, and writes nothing', async () => {
    const { store } = setup();
    const c1 = store('c1');
    const c2 = store('c2');
    const created = await c1.create(intent('r1'));
    if (!created.ok) throw new Error(created.error.message);
    expect((await c2.drive(created.value)).ok).toBe(true);
    const stale = await c1.failed(created.value, errorOf('insufficient_capacity', 'full'));
    expect(!stale.ok && stale.error.code).toBe('conflict');
    expect(await vms(c1)).toBe(1);
    expect((await c1.create(intent('r1'))).ok).toBe(false);
  });

  it('keeps a placed intent forever and lets failed and released ones expire after the TTL (finding 5b)', async () => {
    const { store, advance } = setup();
    const s = store('c1');
    const a = await s.create(intent('placed'));
    const b = await s.create(intent('failed'));
    if (!a.ok || !b.ok) throw new Error('create failed');
    expect((await s.placed(a.value, reply)).ok).toBe(true);
    expect((await s.failed(b.value, errorOf('insufficient_capacity', 'full'))).ok).toBe(true);
    advance(8 * DAY);
    const placed = await s.get('placed');
    expect(placed.ok && placed.value?.value.state).toBe('placed');
    expect(await s.get('failed')).toEqual({ ok: true, value: null });
    expect(await vms(s)).toBe(1);
  });

  it('starts a quota set for a tenant that already has VMs at its true usage (finding 5e)', async () => {
    const { store } = setup();
    const s = store('c1');
    for (const id of ['r1', 'r2']) expect((await s.create(intent(id))).ok).toBe(true);
    const set = await s.setQuota(TenantQuotaSchema.parse({ tenantId: 'acme', maxVms: 2 }));
    expect(set.ok && set.value.value.usage.vms).toBe(2);
    const over = await s.create(intent('r3'));
    expect(!over.ok && over.error.code).toBe('quota_exceeded');
  });

  it("counts an intent's hugepages against the tenant's maxHugepagesMiB in the same batch, gives them back, and recounts them", async () => {
    const { store } = setup();
    const s = store('c1');
    await s.setQuota(TenantQuotaSchema.parse({ tenantId: 'acme', maxHugepagesMiB: { '1Gi': 2048 } }));
    const huge = (id: string): NewIntent => ({ ...intent(id), hugepages: { pageSizeMiB: 1024, count: 1 } });
    const one = await s.create(huge('h1'));
    expect((await s.create(huge('h2'))).ok).toBe(true);
    const over = await s.create(huge('h3'));
    expect(over.ok ? 'admitted' : [over.error.code, over.error.message]).toEqual([
      'quota_exceeded',
      'tenant acme: hugepages-1Gi 2048 MiB + 1024 MiB would exceed the limit of 2048 MiB',
    ]);
    expect((await s.create(intent('plain'))).ok).toBe(true); // memory without hugepages is not limited by it
    if (!one.ok) throw new Error(one.error.message);
    expect((await s.failed(one.value, errorOf('insufficient_capacity', 'full'))).ok).toBe(true);
    const u = await s.usage('acme');
    expect(u.ok && u.value?.value.usage.hugepagesMiB).toEqual({ '1Gi': 1024 });
    const recount = await s.recount('acme');
    expect(recount.ok && recount.value.after.usage.hugepagesMiB).toEqual({ '1Gi': 1024 });
    expect((await s.create(huge('h3'))).ok).toBe(true);
  });

  it('rebuilds a tenant usage record from its counting intents (quota.recount)', async () => {
    const { bucket, store } = setup();
    const s = store('c1');
    for (const id of ['r1', 'r2', 'r3']) expect((await s.create(intent(id))).ok).toBe(true);
    // A record damaged by hand (or restored from an old backup).
    const held = await s.usage('acme');
    if (!held.ok || held.value === null) throw new Error('no record');
    const { encode } = await import('@allot/protocol');
    await bucket.write([
      {
        key: 'usage.acme',
        value: encode({ ...held.value.value, usage: { vms: 0, vcpus: 0, memoryMiB: 0, vmsPerNode: {} } }),
        expectedRevision: held.value.revision,
      },
    ]);
    const recount = await s.recount('acme');
    expect(recount.ok && recount.value.after.usage).toEqual({ vms: 3, vcpus: 6, memoryMiB: 768, vmsPerNode: { a: 3 } });
    expect(recount.ok && recount.value.before?.usage.vms).toBe(0);
  });
});
