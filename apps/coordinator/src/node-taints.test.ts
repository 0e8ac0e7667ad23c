import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { encode } from '@allot/protocol';
import { unwrap } from '@allot/core';
import { NodeTaints } from './node-taints.ts';
import { inProcessCluster } from './testing/fake-agents.ts';

const logger = pino({ level: 'silent' });
const ml = { key: 'dedicated', value: 'ml', effect: 'NoSchedule' as const, reason: 'reserved for ml' };
const place = (requestId: string, tolerations?: { key: string; operator: 'Equal' | 'Exists'; value: string }[]) => ({
  request: { requestId, tenantId: 't', resources: { memoryMiB: 1024, vcpus: 1 } },
  placement: { strategy: 'manual' as const, nodeId: 'a', ...(tolerations === undefined ? {} : { tolerations }) },
});

/** Two coordinators over one bucket, each following the taint records into its own view. */
async function setUp() {
  const cluster = inProcessCluster({ a: { memoryMiB: 8192, cores: 8 }, b: { memoryMiB: 8192, cores: 8 } });
  const parts = await Promise.all(
    ['c1', 'c2'].map(async (id) => {
      const c = await cluster.coordinator(id, { place: { timeoutRetries: 0 } });
      const taints = new NodeTaints({
        bucket: cluster.bucket,
        clock: cluster.clock,
        coordinatorId: id,
        logger,
        onChange: (n, t) => c.view.setTaints(n, t),
      });
      await taints.start();
      return { c, taints };
    }),
  );
  return { cluster, one: parts[0]!, two: parts[1]! };
}

describe('node taints', () => {
  it('a taint set on one coordinator keeps untolerating places off the node on the other, with the reason', async () => {
    const { one, two } = await setUp();
    expect(unwrap(await one.taints.set('a', ml, 'taint-1'))).toEqual([ml]);
    await expect.poll(() => two.c.view.get('a')?.taints).toEqual([ml]);
    const refused = await two.c.place(place('p-1'));
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.error.message).toContain('node(s) had untolerated taint {dedicated: ml} (reserved for ml)');
    expect((await two.c.place(place('p-2', [{ key: 'dedicated', operator: 'Exists', value: '' }]))).ok).toBe(true);
  });

  it('a taint of the same key replaces the old one; untaint removes it everywhere', async () => {
    const { one, two } = await setUp();
    unwrap(await one.taints.set('a', ml, 't-1'));
    const other = { key: 'dedicated', value: 'db', effect: 'NoSchedule' as const };
    expect(unwrap(await two.taints.set('a', other, 't-2'))).toEqual([other]);
    expect(unwrap(await one.taints.set('a', { key: 'maintenance', value: '', effect: 'NoSchedule' }, 't-3'))).toHaveLength(2);
    expect(unwrap(await two.taints.remove('a', 'dedicated', undefined, 'u-1'))).toEqual([
      { key: 'maintenance', value: '', effect: 'NoSchedule' },
    ]);
    expect(unwrap(await one.taints.remove('a', 'maintenance', undefined, 'u-2'))).toEqual([]);
    await expect.poll(() => one.c.view.get('a')?.taints).toBeUndefined();
    expect((await one.c.place(place('p-3'))).ok).toBe(true);
  });

  it('an invalid record in the bucket is ignored, not a crash', async () => {
    const { cluster, one } = await setUp();
    unwrap(await cluster.bucket.write([{ key: 'taint.a', value: encode({ nodeId: 'b', taints: [] }), expectedRevision: 0 }]));
    unwrap(await cluster.bucket.write([{ key: 'taint.b', value: new Uint8Array([1, 2, 3]), expectedRevision: 0 }]));
    expect(one.taints.of('a')).toEqual([]);
    expect((await one.c.place(place('p-4'))).ok).toBe(true);
  });
});
