import { describe, expect, it } from 'vitest';
import { buildPlaceBatchRequest } from './place-batch.ts';

describe('allot place-batch flags', () => {
  it('makes n members of one shape, named <batch-id>-<i>, spread by --max-per-node', () => {
    const r = buildPlaceBatchRequest({ tenant: 'acme', count: '3', memory: '2G', vcpus: '2', 'max-per-node': '1', 'batch-id': 'web' });
    expect(r.ok && { ids: r.value.members.map((m) => m.requestId), max: r.value.maxPerNode, mem: r.value.members[2]?.resources }).toEqual({
      ids: ['web-0', 'web-1', 'web-2'],
      max: 1,
      mem: { memoryMiB: 2048, vcpus: 2 },
    });
  });

  it('takes --max-per-node as the group limit with --group, and a new batch id by default', () => {
    const r = buildPlaceBatchRequest({ tenant: 'acme', count: '2', memory: '1024', group: 'db', 'max-per-node': '2' }, () => 'fresh');
    expect(r.ok && { id: r.value.batchId, group: r.value.placement.group, max: r.value.maxPerNode }).toEqual({
      id: 'fresh',
      group: { name: 'db', maxPerNode: 2 },
      max: undefined,
    });
  });

  it('refuses what a batch cannot be: no count, too many, a request id, preemption', () => {
    const base = { tenant: 'acme', memory: '1024' };
    expect(buildPlaceBatchRequest(base)).toMatchObject({ ok: false, message: '--count is required' });
    expect(buildPlaceBatchRequest({ ...base, count: '257' }).ok).toBe(false);
    expect(buildPlaceBatchRequest({ ...base, count: '2', 'request-id': 'x' }).ok).toBe(false);
    expect(buildPlaceBatchRequest({ ...base, count: '2', preempt: true }).ok).toBe(false);
  });
});
