import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encode, SCHED_ENDPOINTS, schedSubjectFor, schedSubject } from '@allot/protocol';
import type { Result } from '@allot/core';
import { requestTyped, type Output } from '@allot/nats';
import { Kvm } from '@nats-io/kv';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupAll, COORDINATOR_MAIN, isLogMsg, registerCleanup, spawnProcess, startNatsServer, tempDir } from '../harness/index.ts';

afterAll(cleanupAll);

type QuotaView = Output<(typeof SCHED_ENDPOINTS)['quota.get']['reply']>;

describe('a coordinator started on a deployment of the layout before usage records moved into allot_placements', () => {
  it('carries the tenant limits of KV allot_quotas and the placements they counted over, once', async () => {
    const server = await startNatsServer({ jetstream: true });
    const nc = await connect({ servers: server.url, name: 'test-client' });
    registerCleanup('legacy test client', () => nc.close());
    const kvm = new Kvm(jetstream(nc));
    // What the earlier version wrote: acme limited to 2 VMs and counting one, old-1, whose intent sits under its bare id.
    const quotas = await kvm.create('allot_quotas', { history: 1 });
    const quota = { tenantId: 'acme', maxVms: 2, maxVcpus: 16, placeRates: [], releaseRates: [] };
    await quotas.put(
      'acme',
      encode({
        version: 1,
        tenantId: 'acme',
        quota,
        usage: { vms: 1, vcpus: 2, memoryMiB: 1024, vmsPerNode: { a: 1 } },
        live: [{ requestId: 'old-1', nodeId: 'a', memoryMiB: 1024, vcpus: 2 }],
        recentlyReleased: [],
      }),
    );
    const placements = await kvm.create('allot_placements', { history: 1 });
    await placements.put(
      'old-1',
      encode({
        requestId: 'old-1',
        tenantId: 'acme',
        hash: 'a'.repeat(64),
        state: 'placed',
        nodeId: 'a',
        attempt: 1,
        refusedBy: [],
        coordinatorId: 'old',
        updatedAt: 1,
        memoryMiB: 1024,
        vcpus: 2,
      }),
    );

    const dir = await tempDir('legacy-quotas');
    const file = join(dir, 'c1.json');
    await writeFile(file, JSON.stringify({ coordinatorId: 'c1', nats: { servers: [server.url] }, logLevel: 'info' }));
    const start = () =>
      spawnProcess({
        name: 'coordinator c1',
        script: COORDINATOR_MAIN,
        args: ['--config', file],
        env: { ALLOT_LOG_FORMAT: 'json', NODE_ENV: 'test' },
      });
    const get = (tenantId: string) =>
      requestTyped(
        nc,
        schedSubjectFor('quota.get', { tenantId }) ?? schedSubject('quota.get', 'unnamed'),
        { tenantId },
        SCHED_ENDPOINTS['quota.get'].reply,
        { timeoutMs: 5_000 },
      ) as Promise<Result<QuotaView>>;

    const first = start();
    await first.waitForLine(
      isLogMsg('legacy layout migrated: quota limits and placement intents of an earlier version carried over'),
      30_000,
    );
    await first.waitForLine(isLogMsg('coordinator ready'), 30_000);
    const view = await get('acme');
    expect(view.ok && view.value).toMatchObject({ quota: { maxVms: 2, maxVcpus: 16 }, usage: { vms: 1, vcpus: 2, memoryMiB: 1024 } });
    expect(await first.stop('SIGTERM', 10_000)).toBe(0);

    // Started again: nothing to do (the marker), nothing counted twice.
    const second = start();
    await second.waitForLine(isLogMsg('coordinator ready'), 30_000);
    expect(
      second.lines.some(isLogMsg('legacy layout migrated: quota limits and placement intents of an earlier version carried over')),
    ).toBe(false);
    const again = await get('acme');
    expect(again.ok && again.value.usage.vms).toBe(1);
    expect(await second.stop('SIGTERM', 10_000)).toBe(0);
  });
});
