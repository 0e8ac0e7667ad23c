import { TenantQuotaSchema, unwrap } from '@allot/core';
import { describe, expect, it } from 'vitest';
import type { Bucket } from '../store/bucket.ts';
import { MemoryBucket } from '../store/memory-bucket.ts';
import { IntentStore, type NewIntent } from './intent-store.ts';

/* A batch's members are created pending in ONE atomic write with their tenant's usage: all of them or none. */

function setup() {
  const now = 1_000_000;
  const clock = { wall: () => now, monotonic: () => now };
  const bucket = new MemoryBucket({ now: () => now });
  let writes = 0;
  const counting: Bucket = {
    get: (key) => bucket.get(key),
    write: (w) => {
      writes += 1;
      return bucket.write(w);
    },
    watch: (f) => bucket.watch(f),
  } as Bucket;
  const store = new IntentStore(counting, { coordinatorId: 'c1', clock, finishedTtlMs: 86_400_000 });
  return { store, writes: () => writes };
}

const member = (i: number, nodeId = 'a'): NewIntent => ({
  requestId: `m-${i}`,
  tenantId: 'acme',
  hash: 'h'.repeat(64),
  nodeId,
  memoryMiB: 1024,
  vcpus: 1,
  batch: { batchId: 'b1', index: i, size: 3 },
});

describe('IntentStore.createBatch', () => {
  it('writes every member pending and counts them all in one write', async () => {
    const { store, writes } = setup();
    const created = await store.createBatch([member(0), member(1), member(2, 'b')]);
    expect(created.ok && created.value.map((s) => [s.value.requestId, s.value.state, s.value.attempt])).toEqual([
      ['m-0', 'pending', 1],
      ['m-1', 'pending', 1],
      ['m-2', 'pending', 1],
    ]);
    expect(writes()).toBe(1);
    const u = await store.usage('acme');
    expect(u.ok && u.value?.value.usage).toEqual({ vms: 3, memoryMiB: 3072, vcpus: 3, vmsPerNode: { a: 2, b: 1 } });
    const read = await store.get('m-1');
    expect(read.ok && read.value?.value.batch).toEqual({ batchId: 'b1', index: 1, size: 3 });
  });

  it("refuses the whole batch when the tenant's quota admits only part of it, writing nothing", async () => {
    const { store } = setup();
    await store.setQuota(TenantQuotaSchema.parse({ tenantId: 'acme', maxVms: 2 }));
    const created = await store.createBatch([member(0), member(1), member(2)]);
    expect(!created.ok && created.error).toMatchObject({ code: 'quota_exceeded', details: { limit: 'maxVms', memberIndex: 2 } });
    for (const i of [0, 1, 2]) expect(unwrap(await store.get(`m-${i}`))).toBeNull();
    const u = await store.usage('acme');
    expect(u.ok && u.value?.value.usage.vms).toBe(0);
  });

  it('writes nothing when one member id already has an intent (conflict naming it)', async () => {
    const { store } = setup();
    await store.create(member(1));
    const created = await store.createBatch([member(0), member(1), member(2)]);
    expect(!created.ok && created.error).toMatchObject({ code: 'conflict', details: { requestId: 'm-1' } });
    expect(unwrap(await store.get('m-0'))).toBeNull();
    const u = await store.usage('acme');
    expect(u.ok && u.value?.value.usage.vms).toBe(1);
  });
});
