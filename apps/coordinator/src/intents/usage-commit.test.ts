import { errorOf, TenantQuotaSchema, type Result } from '@allot/core';
import { counts } from '../intents.ts';
import { describe, expect, it } from 'vitest';
import type { Bucket, BucketChange, BucketEntry, BucketWrite } from '../store/bucket.ts';
import { MemoryBucket } from '../store/memory-bucket.ts';
import { IntentStore, type NewIntent } from './intent-store.ts';

/** The shared MemoryBucket seen through a connection that takes a little while per operation and counts batches. */
class SlowBucket implements Bucket {
  batches = 0;
  readonly #inner: MemoryBucket;
  constructor(inner: MemoryBucket) {
    this.#inner = inner;
  }
  async get(key: string): Promise<Result<BucketEntry | null>> {
    await tick();
    return this.#inner.get(key);
  }
  async write(writes: readonly BucketWrite[]): Promise<Result<number[]>> {
    if (writes.length > 1) this.batches += 1;
    await tick();
    const written = await this.#inner.write(writes);
    await tick();
    return written;
  }
  watch(onChange: (change: BucketChange) => void) {
    return this.#inner.watch(onChange);
  }
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

function setup() {
  const clock = { wall: () => 1_000_000, monotonic: () => 1_000_000 };
  const shared = new MemoryBucket({ now: () => 1_000_000 });
  const coordinator = (id: string) => {
    const bucket = new SlowBucket(shared);
    return { bucket, store: new IntentStore(bucket, { coordinatorId: id, clock, finishedTtlMs: 0 }) };
  };
  return { coordinator };
}

function intent(requestId: string, nodeId = `n${requestId.length % 7}`): NewIntent {
  return { requestId, tenantId: 'acme', hash: 'h'.repeat(64), nodeId, memoryMiB: 256, vcpus: 2 };
}

/** The tenant's stored counters, and how many of its intents count (what the counters must add up to). */
async function settledUsage(store: IntentStore) {
  const u = await store.usage('acme');
  const scanned = await store.scan();
  if (!u.ok || u.value === null || !scanned.ok) throw new Error('cannot read the bucket');
  const counting = scanned.value.filter((i) => i.value.tenantId === 'acme' && counts(i.value.state)).length;
  return { usage: u.value.value.usage, counting };
}

describe('counting transitions of one tenant (group commit)', () => {
  it('admits many concurrent places of one tenant in a few batches, exactly up to the limit, on two coordinators', async () => {
    const { coordinator } = setup();
    const c1 = coordinator('c1');
    const c2 = coordinator('c2');
    expect((await c1.store.setQuota(TenantQuotaSchema.parse({ tenantId: 'acme', maxVms: 300 }))).ok).toBe(true);
    const results = await Promise.all(Array.from({ length: 600 }, (_, i) => (i % 2 === 0 ? c1 : c2).store.create(intent(`r${i}`))));
    const codes: Record<string, number> = {};
    for (const r of results) {
      const code = r.ok ? 'ok' : r.error.code;
      codes[code] = (codes[code] ?? 0) + 1;
    }
    expect(codes).toEqual({ ok: 300, quota_exceeded: 300 });
    const { usage, counting } = await settledUsage(c1.store);
    expect(usage.vms).toBe(300);
    expect(usage.vcpus).toBe(600);
    expect(counting).toBe(300);
    // One at a time, 600 places would be 600 batches at least (and lost compare-and-sets on top).
    expect(c1.bucket.batches + c2.bucket.batches).toBeLessThan(60);
  });

  it('gives back and admits in queue order, so a release queued before a create makes room for it', async () => {
    const { coordinator } = setup();
    const { store } = coordinator('c1');
    await store.setQuota(TenantQuotaSchema.parse({ tenantId: 'acme', maxVms: 2 }));
    const a = await store.create(intent('a'));
    const b = await store.create(intent('b'));
    if (!a.ok || !b.ok) throw new Error('create failed');
    const [failed, c, d] = await Promise.all([store.failed(a.value, errorOf('insufficient_capacity', 'full')), store.create(intent('c')), store.create(intent('d'))]);
    expect([failed.ok, c.ok, !d.ok && d.error.code]).toEqual([true, true, 'quota_exceeded']);
    expect((await settledUsage(store)).usage.vms).toBe(2);
  });

  it('leaves out only the write whose intent moved meanwhile; the others in its batch commit', async () => {
    const { coordinator } = setup();
    const c1 = coordinator('c1');
    const c2 = coordinator('c2');
    const first = await c1.store.create(intent('moved'));
    if (!first.ok) throw new Error(first.error.message);
    // Another coordinator drives it (a retry landed there): c1's copy is stale.
    expect((await c2.store.drive(first.value)).ok).toBe(true);
    const [stale, ...creates] = await Promise.all([c1.store.failed(first.value, errorOf('insufficient_capacity', 'full')), ...Array.from({ length: 20 }, (_, i) => c1.store.create(intent(`x${i}`)))]);
    expect(!stale.ok && stale.error.code).toBe('conflict');
    expect(creates.map((r) => r.ok)).toEqual(Array(20).fill(true));
    const { usage, counting } = await settledUsage(c1.store);
    expect([usage.vms, counting]).toEqual([21, 21]);
  });

  it('writes a tenant with no usage record yet from its first batch (create of the record in the batch)', async () => {
    const { coordinator } = setup();
    const { store, bucket } = coordinator('c1');
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => store.create(intent(`f${i}`))));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(await settledUsage(store)).toMatchObject({ usage: { vms: 50 }, counting: 50 });
    expect(bucket.batches).toBeLessThanOrEqual(2);
  });
});
