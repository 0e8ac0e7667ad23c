import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer } from '../../../test/harness/index.ts';
import { publishAtomicBatch, publishExpected } from './expected-publish.ts';
import { ensureKv, versionAtLeast } from './streams.ts';

let nc: NatsConnection;
let jsm: JetStreamManager;
const payload = new Uint8Array([1]);

beforeAll(async () => {
  const server = await startNatsServer({ jetstream: true });
  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await cleanupAll();
});

describe('publishAtomicBatch', () => {
  it('stores three messages with consecutive sequences, in the order given', async () => {
    await jsm.streams.add({ name: 'ATOMIC', subjects: ['atomic.>'], allow_atomic: true } as never);
    const seqs = await publishAtomicBatch(
      nc,
      ['a', 'b', 'c'].map((k) => ({ subject: `atomic.${k}`, payload, expectedLastSubjectSequence: 0 })),
      { timeoutMs: 5_000 },
    );
    if (!seqs.ok) throw new Error(seqs.error.message);
    expect(seqs.value[1]).toBe((seqs.value[0] as number) + 1);
    expect(seqs.value[2]).toBe((seqs.value[0] as number) + 2);
    const stored = await jsm.streams.getMessage('ATOMIC', { last_by_subj: 'atomic.c' });
    expect(stored?.seq).toBe(seqs.value[2]);
  });

  it('is refused, storing nothing, on a stream without allow_atomic', async () => {
    await jsm.streams.add({ name: 'PLAIN', subjects: ['plain.>'] });
    const result = await publishAtomicBatch(
      nc,
      [
        { subject: 'plain.a', payload },
        { subject: 'plain.b', payload },
      ],
      { timeoutMs: 5_000 },
    );
    expect(result).toMatchObject({ ok: false, error: { code: 'internal' } });
    expect((await jsm.streams.info('PLAIN')).state.messages).toBe(0);
  });
});

describe('publishExpected', () => {
  it('maps a wrong expected sequence to conflict and a TTL on a stream without allow_msg_ttl to internal', async () => {
    const first = await publishExpected(nc, { subject: 'plain.x', payload, expectedLastSubjectSequence: 0 }, { timeoutMs: 5_000 });
    expect(first.ok).toBe(true);
    const again = await publishExpected(nc, { subject: 'plain.x', payload, expectedLastSubjectSequence: 0 }, { timeoutMs: 5_000 });
    expect(again).toMatchObject({ ok: false, error: { code: 'conflict' } });
    const ttl = await publishExpected(nc, { subject: 'plain.y', payload, ttlMs: 5_000 }, { timeoutMs: 5_000 });
    expect(ttl).toMatchObject({ ok: false, error: { code: 'internal' } });
  });

  it('answers unavailable when no stream takes the subject', async () => {
    expect(await publishExpected(nc, { subject: 'nowhere.x', payload }, { timeoutMs: 1_000 })).toMatchObject({
      ok: false,
      error: { code: 'unavailable' },
    });
  });
});

describe('ensureKv with per-message TTLs and atomic batches', () => {
  it('turns both on for a bucket created without them, and drops max_age when no TTL is asked', async () => {
    const old = await ensureKv(jetstream(nc), 'legacy', { history: 1, replicas: 1, ttlMs: 3_600_000 });
    expect(old.ok).toBe(true);
    const now = await ensureKv(jetstream(nc), 'legacy', {
      history: 1,
      replicas: 1,
      allowMsgTtl: true,
      allowAtomic: true,
      expiryMarkerTtlMs: 60_000,
    });
    expect(now.ok).toBe(true);
    const config = (await jsm.streams.info('KV_legacy')).config as unknown as Record<string, unknown>;
    expect(config).toMatchObject({ max_age: 0, allow_msg_ttl: true, allow_atomic: true, subject_delete_marker_ttl: 60_000_000_000 });
  });
});

describe('versionAtLeast', () => {
  it('compares dotted versions numerically, ignoring pre-release tails', () => {
    expect(versionAtLeast('2.12.0', '2.12.0')).toBe(true);
    expect(versionAtLeast('2.15.1', '2.12.0')).toBe(true);
    expect(versionAtLeast('2.9.10', '2.12.0')).toBe(false);
    expect(versionAtLeast('2.11.9', '2.12.0')).toBe(false);
    expect(versionAtLeast('2.12.0-beta.1', '2.12.0')).toBe(true);
    expect(versionAtLeast('3.0.0', '2.12.0')).toBe(true);
  });
});
