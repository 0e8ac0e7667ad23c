import { ensureKv } from '@allot/nats';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer, waitFor, type NatsServerHandle } from '../../../../test/harness/index.ts';
import { jetstream, type NatsConnection } from '../nats-deps.ts';
import type { BucketChange } from './bucket.ts';
import { NatsBucket } from './nats-bucket.ts';

let server: NatsServerHandle;
let nc: NatsConnection;
let bucket: NatsBucket;
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  const kv = await ensureKv(jetstream(nc), 'test_bucket', {
    history: 1,
    replicas: 1,
    allowMsgTtl: true,
    allowAtomic: true,
    expiryMarkerTtlMs: 60_000,
  });
  if (!kv.ok) throw new Error(kv.error.message);
  bucket = new NatsBucket(nc, kv.value, 'test_bucket', { timeoutMs: 2_000 });
});

afterAll(async () => {
  await nc?.close();
  await cleanupAll();
});

describe('NatsBucket on a real nats-server', () => {
  it('creates a key once, then updates it only at the revision it names', async () => {
    const created = await bucket.write([{ key: 'one', value: bytes('a'), expectedRevision: 0 }]);
    if (!created.ok) throw new Error(created.error.message);
    const again = await bucket.write([{ key: 'one', value: bytes('b'), expectedRevision: 0 }]);
    expect(again.ok || again.error.code).toBe('conflict');
    const rev = created.value[0] as number;
    const updated = await bucket.write([{ key: 'one', value: bytes('c'), expectedRevision: rev }]);
    expect(updated.ok).toBe(true);
    const stale = await bucket.write([{ key: 'one', value: bytes('d'), expectedRevision: rev }]);
    expect(stale.ok || stale.error.code).toBe('conflict');
    const read = await bucket.get('one');
    expect(read.ok && read.value && text(read.value.value)).toBe('c');
    expect(read.ok && read.value?.revision).toBe(updated.ok && updated.value[0]);
    expect(await bucket.get('absent')).toEqual({ ok: true, value: null });
  });

  it('commits two keys together, or neither when one expectation fails', async () => {
    const usage = await bucket.write([{ key: 'usage.acme', value: bytes('1 vm'), expectedRevision: 0 }]);
    if (!usage.ok) throw new Error(usage.error.message);
    const both = await bucket.write([
      { key: 'intent.r1', value: bytes('pending'), expectedRevision: 0 },
      { key: 'usage.acme', value: bytes('2 vms'), expectedRevision: usage.value[0] as number },
    ]);
    if (!both.ok) throw new Error(both.error.message);
    expect(both.value[1]).toBe((both.value[0] as number) + 1);
    // The usage record has moved on: a batch naming its old revision stores nothing, not even the new intent.
    const neither = await bucket.write([
      { key: 'intent.r2', value: bytes('pending'), expectedRevision: 0 },
      { key: 'usage.acme', value: bytes('3 vms'), expectedRevision: usage.value[0] as number },
    ]);
    expect(neither.ok || neither.error.code).toBe('conflict');
    expect(await bucket.get('intent.r2')).toEqual({ ok: true, value: null });
    const held = await bucket.get('usage.acme');
    expect(held.ok && held.value && text(held.value.value)).toBe('2 vms');
  });

  it('lets a value with a TTL disappear, tells watchers, and allows creating the key again', async () => {
    const changes: BucketChange[] = [];
    const watch = await bucket.watch((c) => changes.push(c));
    await watch.caughtUp;
    const written = await bucket.write([{ key: 'short', value: bytes('soon gone'), expectedRevision: 0, ttlMs: 1_000 }]);
    expect(written.ok).toBe(true);
    expect((await bucket.get('short')).ok).toBe(true);
    await waitFor(
      async () => {
        const r = await bucket.get('short');
        return r.ok && r.value === null;
      },
      { timeoutMs: 10_000, message: 'the TTL to expire the value' },
    );
    await waitFor(() => changes.some((c) => c.key === 'short' && 'deleted' in c), {
      timeoutMs: 5_000,
      message: 'the watch to see the expiry',
    });
    // The delete marker left behind reads as absent, and a create over it succeeds.
    const recreated = await bucket.write([
      { key: 'short', value: bytes('back'), expectedRevision: 0 },
      { key: 'other', value: bytes('x'), expectedRevision: 0 },
    ]);
    expect(recreated.ok).toBe(true);
    watch.stop();
  });

  it('watch delivers what is stored, then caughtUp, then each change', async () => {
    const seen: string[] = [];
    const watch = await bucket.watch((c) => seen.push(c.key));
    await watch.caughtUp;
    expect(seen).toContain('usage.acme');
    await bucket.write([{ key: 'later', value: bytes('x'), expectedRevision: 0 }]);
    await waitFor(() => seen.includes('later'), { message: 'the change to be delivered' });
    watch.stop();
  });

  it('keeps delivering to a watcher that threw on an earlier change', async () => {
    const seen: string[] = [];
    const watch = await bucket.watch((c) => {
      if (c.key === 'poison') throw new Error('a watcher bug');
      seen.push(c.key);
    });
    await watch.caughtUp;
    await bucket.write([{ key: 'poison', value: bytes('x'), expectedRevision: 0 }]);
    await bucket.write([{ key: 'after-poison', value: bytes('y'), expectedRevision: 0 }]);
    await waitFor(() => seen.includes('after-poison'), { message: 'the change after the throw to be delivered' });
    watch.stop();
  });

  it('refuses keys that are not KV keys, and the same key twice in one batch', async () => {
    expect(await bucket.write([{ key: 'a b', value: bytes('x'), expectedRevision: 0 }])).toMatchObject({
      ok: false,
      error: { code: 'invalid_request' },
    });
    const twice = await bucket.write([
      { key: 'dup', value: bytes('x'), expectedRevision: 0 },
      { key: 'dup', value: bytes('y'), expectedRevision: 0 },
    ]);
    expect(twice).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
  });

  it('answers unavailable while the server is down', async () => {
    await server.stop();
    const one = await bucket.write([{ key: 'down', value: bytes('x'), expectedRevision: 0 }]);
    const two = await bucket.write([
      { key: 'down1', value: bytes('x'), expectedRevision: 0 },
      { key: 'down2', value: bytes('x'), expectedRevision: 0 },
    ]);
    const read = await bucket.get('down');
    expect([one.ok || one.error.code, two.ok || two.error.code, read.ok || read.error.code]).toEqual([
      'unavailable',
      'unavailable',
      'unavailable',
    ]);
    await server.restart();
  });
});
