import type { NumaMemoryUsage, UsageSnapshot } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { parseHugepagesQuota } from './parse/hugepages.ts';
import { buildPlaceRequest } from './parse/place-request.ts';
import { renderNodes } from './render/nodes.ts';
import { renderQuota } from './render/quota.ts';
import { renderNodeUsage } from './render/usage.ts';
import { sampleNode, sampleSnapshot } from './testing/samples.ts';

/*
 * NUMA-local memory and hugepages on the command line: `allot place --numa-node 1 --hugepages 2Mi:256`, and the
 * per-NUMA-node free memory and hugepages in `allot nodes -o wide` and `allot usage --node`.
 */
const id = () => 'fixed-id';
const NUMA: NumaMemoryUsage[] = [
  { node: 0, capacityMiB: 6656, pinnedMiB: 6000, freeMiB: 656, hugepages: [{ pageSizeMiB: 2, total: 256, used: 200, free: 56 }] },
  {
    node: 1,
    capacityMiB: 6656,
    pinnedMiB: 0,
    freeMiB: 6656,
    hugepages: [
      { pageSizeMiB: 2, total: 256, used: 0, free: 256 },
      { pageSizeMiB: 1024, total: 1, used: 1, free: 0 },
    ],
  },
];
const withNuma = (nodeId: string): Partial<UsageSnapshot> => ({ memory: { ...sampleSnapshot(nodeId).memory, numa: NUMA } });

describe('allot place --numa-node and --hugepages', () => {
  it('puts the memory on a NUMA node and asks for hugepages by kube size name', () => {
    const built = buildPlaceRequest({ tenant: 'demo', memory: '4G', vcpus: '2', 'numa-node': '1', hugepages: '2Mi:256' }, id);
    expect(built.ok && built.value.request.memory).toEqual({ numaNode: 1, hugepages: { pageSizeMiB: 2, count: 256 } });
    const gib = buildPlaceRequest({ tenant: 'demo', memory: '1G', vcpus: '1', hugepages: '1Gi:2' }, id);
    expect(gib.ok && gib.value.request.memory).toEqual({ hugepages: { pageSizeMiB: 1024, count: 2 } });
    expect(buildPlaceRequest({ tenant: 'demo', vcpus: '1' }, id)).toMatchObject({ ok: true, value: { request: { memory: undefined } } });
  });

  it('refuses a size or count it cannot send, naming the flag', () => {
    expect(buildPlaceRequest({ tenant: 'demo', vcpus: '1', hugepages: '4Mi:2' }, id)).toEqual({
      ok: false,
      message: '--hugepages: "4Mi:2" is not <2Mi|1Gi>:<pages>',
    });
    expect(buildPlaceRequest({ tenant: 'demo', vcpus: '1', hugepages: '2Mi:0' }, id).ok).toBe(false);
    expect(buildPlaceRequest({ tenant: 'demo', vcpus: '1', 'numa-node': '256' }, id)).toEqual({
      ok: false,
      message: '--numa-node: 256 is outside 0..255',
    });
  });
});

describe('per-NUMA-node memory and hugepages in listings', () => {
  it('allot nodes -o wide adds free memory and free hugepages per NUMA node; the narrow list stays as it was', () => {
    const nodes = [sampleNode('n1', {}, withNuma('n1')), sampleNode('old')];
    const narrow = renderNodes(nodes, Date.now());
    expect(narrow).not.toContain('NUMA');
    const wide = renderNodes(nodes, Date.now(), { wide: true }).split('\n');
    expect(wide[0]).toMatch(/NUMA FREE MEMORY\s+NUMA FREE HUGEPAGES/);
    expect(wide[1]).toContain('0:656 MiB 1:6.5 GiB');
    expect(wide[1]).toContain('2Mi 0:56 1:256; 1Gi 0:0 1:0');
    expect(wide[2]).toMatch(/^old\b.*-\s+-\s*$/);
  });

  it('allot usage --node shows each NUMA node: free, pinned and capacity, and its hugepages used of total', () => {
    const text = renderNodeUsage(sampleNode('n1', {}, withNuma('n1')), Date.now());
    expect(text).toContain('numa 0');
    expect(text).toMatch(/numa 0:\s+656 MiB free of 6656 MiB \(6000 MiB pinned\); hugepages-2Mi 200\/256 used/);
    expect(text).toMatch(/numa 1:\s+6656 MiB free of 6656 MiB \(0 MiB pinned\); hugepages-2Mi 0\/256 used, hugepages-1Gi 1\/1 used/);
  });
});

describe('hugepages in tenant quotas on the command line', () => {
  it('reads --max-hugepages <size>:<amount> per page size, amounts in MiB or binary units', () => {
    expect(parseHugepagesQuota(['2Mi:512', '1Gi:4G'])).toEqual({ ok: true, value: { '2Mi': 512, '1Gi': 4096 } });
    expect(parseHugepagesQuota(undefined)).toEqual({ ok: true, value: undefined });
    expect(parseHugepagesQuota(['3Mi:512'])).toEqual({ ok: false, message: '--max-hugepages: "3Mi:512" is not <2Mi|1Gi>:<MiB>' });
    expect(parseHugepagesQuota(['2Mi:1', '2Mi:2'])).toEqual({ ok: false, message: '--max-hugepages: 2Mi given twice' });
  });

  it('allot quotas get shows the hugepages held beside each limit', () => {
    const text = renderQuota({
      quota: { tenantId: 'acme', maxHugepagesMiB: { '2Mi': 512 }, placeRates: [], releaseRates: [] },
      usage: { vms: 2, vcpus: 2, memoryMiB: 512, hugepagesMiB: { '2Mi': 400, '1Gi': 2048 } },
    });
    expect(text).toMatch(/hugepages:\s+2Mi 400 MiB of 512 MiB; 1Gi 2 GiB \(no limit\)/);
    const none = renderQuota({ quota: { tenantId: 'acme', placeRates: [], releaseRates: [] }, usage: { vms: 0, vcpus: 0, memoryMiB: 0 } });
    expect(none).toMatch(/hugepages:\s+none \(no limit\)/);
  });
});
