import { errorOf, TenantQuotaSchema, type Result } from '@allot/core';
import { counts } from '../intents.ts';
import { describe, expect, it } from 'vitest';
import type { Bucket, BucketChange, BucketEntry, BucketWrite } from '../store/bucket.ts';
import { MemoryBucket } from '../store/memory-bucket.ts';
import { IntentStore, type NewIntent } from './intent-store.ts';

/** The shared MemoryBucket seen through a connection that takes a little while per operation and counts batches. */
class SlowBucket implements Bucket {
  batches = 0;
  /** The most writes one batch carried. */
  largest = 0;
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
    this.largest = Math.max(this.largest, writes.length);
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
  return { coordinator, shared };
}

function intent(requestId: string, nodeId = `n${requestId.length % 7}`, tenantId = 'acme'): NewIntent {
  return { requestId, tenantId, hash: 'h'.repeat(64), nodeId, memoryMiB: 256, vcpus: 2 };
}

/** The tenant's stored counters, and how many of its intents count (what the counters must add up to). */
async function settledUsage(store: IntentStore, tenantId = 'acme') {
  const u = await store.usage(tenantId);
  const scanned = await store.scan();
  if (!u.ok || u.value === null || !scanned.ok) throw new Error('cannot read the bucket');
  const counting = scanned.value.filter((i) => i.value.tenantId === tenantId && counts(i.value.state)).length;
  return { usage: u.value.value.usage, counting };
}

function tally(results: readonly Result<unknown>[]): Record<string, number> {
  const codes: Record<string, number> = {};
  for (const r of results) {
    const code = r.ok ? 'ok' : r.error.code;
    codes[code] = (codes[code] ?? 0) + 1;
  }
  return codes;
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
    const [failed, c, d] = await Promise.all([
      store.failed(a.value, errorOf('insufficient_capacity', 'full')),
      store.create(intent('c')),
      store.create(intent('d')),
    ]);
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
    const [stale, ...creates] = await Promise.all([
      c1.store.failed(first.value, errorOf('insufficient_capacity', 'full')),
      ...Array.from({ length: 20 }, (_, i) => c1.store.create(intent(`x${i}`))),
    ]);
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

/** The shared bucket as one coordinator sees it while another keeps writing `usage.<hot>`: every batch naming it loses. */
class ContendedBucket extends SlowBucket {
  readonly #shared: MemoryBucket;
  readonly #hotKey: string;
  constructor(shared: MemoryBucket, hotTenant: string) {
    super(shared);
    this.#shared = shared;
    this.#hotKey = `usage.${hotTenant}`;
  }
  override async write(writes: readonly BucketWrite[]): Promise<Result<number[]>> {
    if (writes.some((w) => w.key === this.#hotKey)) {
      const held = await this.#shared.get(this.#hotKey);
      if (held.ok && held.value !== null)
        await this.#shared.write([{ key: this.#hotKey, value: held.value.value, expectedRevision: held.value.revision }]);
    }
    return super.write(writes);
  }
}

describe('counting transitions of many tenants (one batch across tenants)', () => {
  it('commits places spread over many tenants in a few batches, each tenant exact and within its limit', async () => {
    const { coordinator } = setup();
    const { store, bucket } = coordinator('c1');
    const TENANTS = 200;
    for (let t = 0; t < TENANTS; t += 2)
      expect((await store.setQuota(TenantQuotaSchema.parse({ tenantId: `t${t}`, maxVms: 3 }))).ok).toBe(true);
    bucket.batches = 0;
    // 5 places per tenant: tenants with a quota admit 3 of them, the others all 5.
    const results = await Promise.all(
      Array.from({ length: TENANTS * 5 }, (_, i) => store.create(intent(`r${i}`, 'n1', `t${i % TENANTS}`))),
    );
    expect(tally(results)).toEqual({ ok: (TENANTS / 2) * 3 + (TENANTS / 2) * 5, quota_exceeded: (TENANTS / 2) * 2 });
    for (let t = 0; t < TENANTS; t++) {
      const { usage, counting } = await settledUsage(store, `t${t}`);
      expect([usage.vms, counting]).toEqual(t % 2 === 0 ? [3, 3] : [5, 5]);
    }
    // A batch per tenant would be 200 at least.
    expect(bucket.batches).toBeLessThan(20);
    expect(bucket.largest).toBeLessThanOrEqual(500);
  });

  it('keeps a batch within 500 messages (intents + one usage record per tenant)', async () => {
    const { coordinator } = setup();
    const { store, bucket } = coordinator('c1');
    const results = await Promise.all(Array.from({ length: 1_000 }, (_, i) => store.create(intent(`r${i}`, 'n1', `t${i}`))));
    expect(tally(results)).toEqual({ ok: 1_000 });
    expect(bucket.largest).toBeLessThanOrEqual(500);
    expect(bucket.batches).toBeGreaterThanOrEqual(4);
    expect(bucket.batches).toBeLessThan(20);
  });

  it('two coordinators placing for the same many tenants: exact usage, no limit crossed, no transition left unanswered', async () => {
    const { coordinator } = setup();
    const c1 = coordinator('c1');
    const c2 = coordinator('c2');
    const TENANTS = 40;
    for (let t = 0; t < TENANTS; t++)
      expect((await c1.store.setQuota(TenantQuotaSchema.parse({ tenantId: `t${t}`, maxVms: 7 }))).ok).toBe(true);
    const results = await Promise.all(
      Array.from({ length: TENANTS * 15 }, (_, i) => (i % 2 === 0 ? c1 : c2).store.create(intent(`r${i}`, 'n1', `t${i % TENANTS}`))),
    );
    expect(tally(results)).toEqual({ ok: TENANTS * 7, quota_exceeded: TENANTS * 8 });
    for (let t = 0; t < TENANTS; t++) {
      const { usage, counting } = await settledUsage(c1.store, `t${t}`);
      expect([usage.vms, counting]).toEqual([7, 7]);
    }
    // Then they give everything back, again interleaved: every counter returns to 0.
    const scanned = await c1.store.scan();
    if (!scanned.ok) throw new Error(scanned.error.message);
    const released = await Promise.all(
      scanned.value.filter((i) => counts(i.value.state)).map((i, k) => (k % 2 === 0 ? c1 : c2).store.released(i, 'tenant')),
    );
    expect(tally(released)).toEqual({ ok: TENANTS * 7 });
    for (let t = 0; t < TENANTS; t++) expect((await settledUsage(c2.store, `t${t}`)).usage.vms).toBe(0);
  });

  it('a tenant whose usage record another coordinator keeps writing does not hold back the other tenants in its batch', async () => {
    const { shared } = setup();
    const clock = { wall: () => 1_000_000, monotonic: () => 1_000_000 };
    const bucket = new ContendedBucket(shared, 'hot');
    const store = new IntentStore(bucket, { coordinatorId: 'c1', clock, finishedTtlMs: 0 });
    // The hot tenant has a record already (the other coordinator's), so every batch naming it expects a stale revision.
    expect((await store.setQuota(TenantQuotaSchema.parse({ tenantId: 'hot', maxVms: 100 }))).ok).toBe(true);
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => store.create(intent(`r${i}`, 'n1', i % 30 === 0 ? 'hot' : `t${i % 30}`))),
    );
    const hot = results.filter((_, i) => i % 30 === 0);
    const others = results.filter((_, i) => i % 30 !== 0);
    expect(tally(others)).toEqual({ ok: 290 });
    expect(tally(hot)).toEqual({ unavailable: 10 });
    for (let t = 1; t < 30; t++) expect(await settledUsage(store, `t${t}`)).toMatchObject({ usage: { vms: 10 }, counting: 10 });
    expect((await settledUsage(store, 'hot')).counting).toBe(0);
  });

  it('leaves out only the write whose intent moved, among the writes of other tenants', async () => {
    const { coordinator } = setup();
    const c1 = coordinator('c1');
    const c2 = coordinator('c2');
    const first = await c1.store.create(intent('moved', 'n1', 'acme'));
    if (!first.ok) throw new Error(first.error.message);
    expect((await c2.store.drive(first.value)).ok).toBe(true);
    c1.bucket.batches = 0;
    const [stale, ...creates] = await Promise.all([
      c1.store.failed(first.value, errorOf('insufficient_capacity', 'full')),
      ...Array.from({ length: 50 }, (_, i) => c1.store.create(intent(`x${i}`, 'n1', `t${i % 10}`))),
    ]);
    expect(!stale.ok && stale.error.code).toBe('conflict');
    expect(tally(creates)).toEqual({ ok: 50 });
    for (let t = 0; t < 10; t++) expect((await settledUsage(c1.store, `t${t}`)).usage.vms).toBe(5);
    expect((await settledUsage(c1.store, 'acme')).usage.vms).toBe(1);
    expect(c1.bucket.batches).toBeLessThan(10);
  });
});
