import { TenantQuotaSchema, type TenantQuota } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { checkQuota, vmsPerNodeAllows } from './check.ts';
import type { TenantUsage } from './usage.ts';

const quota = (q: Partial<TenantQuota>): TenantQuota => TenantQuotaSchema.parse({ tenantId: 'acme', ...q });
const usage: TenantUsage = { vms: 10, vcpus: 62, memoryMiB: 30_720, vmsPerNode: { n1: 3, n2: 7 } };

describe('checkQuota', () => {
  it('refuses a VM past maxVms, naming the limit and the figures', () => {
    const r = checkQuota(quota({ maxVms: 10 }), usage, { memoryMiB: 1024, vcpus: 1 });
    expect(r).toEqual({
      ok: false,
      error: {
        code: 'quota_exceeded',
        message: 'tenant acme: VMs 10 + 1 would exceed the limit of 10',
        details: { tenantId: 'acme', limit: 'maxVms', limitValue: 10, current: 10, requested: 1, exceeded: ['maxVms'] },
      },
    });
  });

  it('refuses vCPUs past maxVcpus, naming the limit and the figures', () => {
    const r = checkQuota(quota({ maxVcpus: 64 }), usage, { memoryMiB: 1024, vcpus: 4 });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.message).toBe('tenant acme: vCPUs 62 + 4 would exceed the limit of 64');
    expect(r.error.details).toMatchObject({ tenantId: 'acme', limit: 'maxVcpus', limitValue: 64, current: 62, requested: 4 });
  });

  it('refuses memory past maxMemoryMiB, naming the limit and the figures', () => {
    const r = checkQuota(quota({ maxMemoryMiB: 32_768 }), usage, { memoryMiB: 4096, vcpus: 1 });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('quota_exceeded');
    expect(r.error.message).toBe('tenant acme: memory 30720 MiB + 4096 MiB would exceed the limit of 32768 MiB');
    expect(r.error.details).toMatchObject({ limit: 'maxMemoryMiB', limitValue: 32_768, current: 30_720, requested: 4096 });
  });

  it('refuses a VM past maxVmsPerNode on the chosen node, naming the node and the figures', () => {
    const q = quota({ maxVmsPerNode: 3 });
    const r = checkQuota(q, usage, { memoryMiB: 1024, vcpus: 1, nodeId: 'n1' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.message).toBe('tenant acme: VMs on node n1 3 + 1 would exceed the per-node limit of 3');
    expect(r.error.details).toMatchObject({ limit: 'maxVmsPerNode', limitValue: 3, current: 3, requested: 1 });
    expect(checkQuota(q, usage, { memoryMiB: 1024, vcpus: 1, nodeId: 'n3' }).ok).toBe(true);
    expect(vmsPerNodeAllows(q, usage, 'n1')).toBe(false);
    expect(vmsPerNodeAllows(q, usage, 'n3')).toBe(true);
  });

  it('admits a request that lands exactly on every limit', () => {
    const q = quota({ maxVms: 11, maxVcpus: 64, maxMemoryMiB: 32_768, maxVmsPerNode: 4 });
    expect(checkQuota(q, usage, { memoryMiB: 2048, vcpus: 2, nodeId: 'n1' })).toEqual({ ok: true, value: undefined });
  });

  it('treats absent limits as unlimited and a limit of 0 as nothing allowed', () => {
    expect(checkQuota(quota({}), usage, { memoryMiB: 1 << 20, vcpus: 1000, nodeId: 'n1' }).ok).toBe(true);
    const r = checkQuota(quota({ maxVms: 0 }), { vms: 0, vcpus: 0, memoryMiB: 0, vmsPerNode: {} }, { memoryMiB: 1, vcpus: 1 });
    expect(r.ok).toBe(false);
  });

  it('lists every limit crossed, leading with the first in check order', () => {
    const r = checkQuota(quota({ maxVcpus: 64, maxMemoryMiB: 32_768 }), usage, { memoryMiB: 4096, vcpus: 4 });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.details).toMatchObject({ limit: 'maxVcpus', exceeded: ['maxVcpus', 'maxMemoryMiB'] });
  });

  it('refuses invalid request figures with invalid_request naming the field', () => {
    const r = checkQuota(quota({}), usage, { memoryMiB: -1, vcpus: 1 });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('invalid_request');
    expect(r.error.details).toEqual({ field: 'memoryMiB' });
    const f = checkQuota(quota({}), usage, { memoryMiB: 1, vcpus: 1.5 });
    expect(!f.ok && f.error.details).toEqual({ field: 'vcpus' });
  });
});
