import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AllotError } from '@allot/core';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { LEASE_HELD, loadStateIdentity, NodeLease, type LeaseHolder, type LeaseKv } from './node-lease.ts';

/** A KV bucket in memory with JetStream's compare-and-set rules (one sequence for the whole bucket). */
class MemoryKv implements LeaseKv {
  seq = 0;
  readonly entries = new Map<string, { value: Uint8Array; revision: number; operation: string }>();
  get(key: string) {
    return Promise.resolve(this.entries.get(key) ?? null);
  }
  create(key: string, value: Uint8Array) {
    const e = this.entries.get(key);
    if (e !== undefined && e.operation === 'PUT') return Promise.reject(new Error('wrong last sequence'));
    return Promise.resolve(this.#put(key, value));
  }
  update(key: string, value: Uint8Array, revision: number) {
    if (this.entries.get(key)?.revision !== revision) return Promise.reject(new Error('wrong last sequence'));
    return Promise.resolve(this.#put(key, value));
  }
  delete(key: string, opts: { previousSeq: number }) {
    if (this.entries.get(key)?.revision !== opts.previousSeq) return Promise.reject(new Error('wrong last sequence'));
    this.seq += 1;
    this.entries.set(key, { value: new Uint8Array(), revision: this.seq, operation: 'DEL' });
    return Promise.resolve();
  }
  /** What another agent writing the key would do. */
  put(key: string, holder: LeaseHolder): number {
    return this.#put(key, new TextEncoder().encode(JSON.stringify(holder)));
  }
  holder(key: string): LeaseHolder | undefined {
    const e = this.entries.get(key);
    return e?.operation === 'PUT' ? (JSON.parse(new TextDecoder().decode(e.value)) as LeaseHolder) : undefined;
  }
  #put(key: string, value: Uint8Array): number {
    this.seq += 1;
    this.entries.set(key, { value, revision: this.seq, operation: 'PUT' });
    return this.seq;
  }
}

const log = pino({ level: 'silent' });
const holder = (identity: string, bootId: string, host = 'hv01', pid = 100): LeaseHolder => ({
  identity,
  bootId,
  host,
  pid,
  since: 1_700_000_000_000,
});
const leases: NodeLease[] = [];

afterEach(async () => {
  for (const l of leases.splice(0)) await l.release();
});

async function acquire(kv: LeaseKv, h: LeaseHolder, opts: { renewEveryMs?: number; onLost?: (e: AllotError) => void } = {}) {
  const r = await NodeLease.acquire(kv, 'n1', h, {
    log,
    onLost: opts.onLost ?? (() => {}),
    ...(opts.renewEveryMs === undefined ? {} : { renewEveryMs: opts.renewEveryMs }),
  });
  if (r.ok) leases.push(r.value);
  return r;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the node lease', () => {
  it('is created when no agent holds the node, naming this agent as the holder', async () => {
    const kv = new MemoryKv();
    expect((await acquire(kv, holder('id-a', 'boot-1'))).ok).toBe(true);
    expect(kv.holder('n1')).toMatchObject({ identity: 'id-a', bootId: 'boot-1', host: 'hv01', pid: 100 });
  });

  it('is taken over at once from a previous boot of the same state directory', async () => {
    const kv = new MemoryKv();
    kv.put('n1', holder('id-a', 'boot-1'));
    expect((await acquire(kv, holder('id-a', 'boot-2', 'hv01', 200))).ok).toBe(true);
    expect(kv.holder('n1')).toMatchObject({ bootId: 'boot-2', pid: 200 });
  });

  it('refuses a second agent with another state directory, naming the holder', async () => {
    const kv = new MemoryKv();
    kv.put('n1', holder('id-a', 'boot-1', 'hv01', 4242));
    const r = await acquire(kv, holder('id-b', 'boot-9', 'hv02'));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('conflict');
    expect(r.error.details).toMatchObject({ reason: LEASE_HELD, holder: { identity: 'id-a', host: 'hv01', pid: 4242 } });
    expect(r.error.message).toContain('hv01');
    expect(r.error.message).toContain('4242');
    expect(kv.holder('n1')).toMatchObject({ identity: 'id-a' });
  });

  it('refuses when the key holds something unreadable, rather than overwriting it', async () => {
    const kv = new MemoryKv();
    kv.entries.set('n1', { value: new TextEncoder().encode('garbage'), revision: 1, operation: 'PUT' });
    const r = await acquire(kv, holder('id-a', 'boot-1'));
    expect(r.ok ? undefined : r.error.details?.['reason']).toBe(LEASE_HELD);
  });

  it('is renewed by compare-and-set, keeping its revision current', async () => {
    const kv = new MemoryKv();
    await acquire(kv, holder('id-a', 'boot-1'), { renewEveryMs: 10 });
    const first = kv.entries.get('n1')!.revision;
    await sleep(80);
    expect(kv.entries.get('n1')!.revision).toBeGreaterThan(first + 2);
    expect(kv.holder('n1')).toMatchObject({ identity: 'id-a', bootId: 'boot-1' });
  });

  it('is lost, once, when another agent holds it at the next renewal, and is no longer renewed', async () => {
    const kv = new MemoryKv();
    const lost: AllotError[] = [];
    await acquire(kv, holder('id-a', 'boot-1'), { renewEveryMs: 10, onLost: (e) => lost.push(e) });
    kv.put('n1', holder('id-b', 'boot-9', 'hv02', 777));
    await sleep(60);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.details).toMatchObject({ reason: 'node_lease_lost', holder: { identity: 'id-b', host: 'hv02' } });
    expect(kv.holder('n1')).toMatchObject({ identity: 'id-b' });
  });

  it('is taken again when it lapsed while JetStream was out and nobody else took it', async () => {
    const kv = new MemoryKv();
    const lost: AllotError[] = [];
    await acquire(kv, holder('id-a', 'boot-1'), { renewEveryMs: 10, onLost: (e) => lost.push(e) });
    kv.entries.delete('n1'); // expired by the bucket's max_age
    await sleep(40);
    expect(lost).toEqual([]);
    expect(kv.holder('n1')).toMatchObject({ identity: 'id-a', bootId: 'boot-1' });
  });

  it('is deleted on release so a successor need not wait, but never deletes another holder', async () => {
    const kv = new MemoryKv();
    const a = await acquire(kv, holder('id-a', 'boot-1'));
    if (!a.ok) throw new Error('not acquired');
    await a.value.release();
    expect(kv.holder('n1')).toBeUndefined();
    const b = await acquire(kv, holder('id-b', 'boot-2'));
    expect(b.ok).toBe(true);
    await a.value.release();
    expect(kv.holder('n1')).toMatchObject({ identity: 'id-b' });
  });
});

describe('the state directory identity', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  it('is created on first start and read back unchanged afterwards', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'allot-identity-'));
    dirs.push(dir);
    const first = await loadStateIdentity(dir);
    expect(first).toMatch(/^[0-9a-f-]{36}$/);
    expect(await loadStateIdentity(dir)).toBe(first);
    const other = await mkdtemp(join(tmpdir(), 'allot-identity-'));
    dirs.push(other);
    expect(await loadStateIdentity(other)).not.toBe(first);
  });
});
