import { AgentAllocationsReplySchema, encode, MAX_ALLOCATIONS_PAGE } from '@allot/protocol';
import { unwrap } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { ManagerFactory } from '@allot/managers';
import { FakeClock } from '@allot/managers/testing';

describe('paged allocations', () => {
  it('pages through 2,500 live allocations in id order, each page far below the NATS payload limit', async () => {
    const clock = new FakeClock();
    const h = unwrap(new ManagerFactory({ clock }).host('node-with-a-long-name-0001').memory({ capacity: 1_000_000 }).build());
    const metadata = { 'vm.name': 'x'.repeat(100), owner: 'team-with-a-long-name' };
    for (let i = 0; i < 2500; i += 1)
      unwrap(
        await h.allocate({
          requestId: `place-request-${i}-${'p'.repeat(60)}`,
          tenantId: i % 2 === 0 ? 'even' : 'odd',
          resources: { memoryMiB: 64, vcpus: 0 },
          metadata,
        }),
      );
    unwrap(await h.release({ requestId: 'rel', allocationId: 'node-with-a-long-name-0001:7' }));
    const seen: string[] = [];
    let after: number | undefined;
    let pages = 0;
    for (;;) {
      const page = unwrap(await h.pageAllocations({ limit: MAX_ALLOCATIONS_PAGE, ...(after === undefined ? {} : { after }) }));
      pages += 1;
      expect(encode(AgentAllocationsReplySchema.parse(page)).byteLength).toBeLessThan(1024 * 1024);
      seen.push(...page.allocations.map((a) => a.id));
      if (!page.truncated) break;
      after = page.next;
    }
    expect(pages).toBe(3);
    expect(seen.length).toBe(2499);
    expect(new Set(seen).size).toBe(2499);
    expect(seen).not.toContain('node-with-a-long-name-0001:7');
    const odd = unwrap(await h.pageAllocations({ tenantId: 'odd', limit: 10, after: 100 }));
    expect(odd.allocations.map((a) => a.id)).toEqual(Array.from({ length: 10 }, (_, k) => `node-with-a-long-name-0001:${102 + 2 * k}`));
    expect(odd).toMatchObject({ truncated: true, next: 120 });
    const one = unwrap(await h.pageAllocations({ requestId: `place-request-9-${'p'.repeat(60)}`, limit: 1 }));
    expect(one).toEqual({ allocations: [expect.objectContaining({ id: 'node-with-a-long-name-0001:10' })], truncated: false });
  });

  it('cuts a page by size too: 1,000 allocations with the largest metadata allowed still page below the payload limit', async () => {
    const clock = new FakeClock();
    const h = unwrap(new ManagerFactory({ clock }).host('n1').memory({ capacity: 1_000_000 }).build());
    const metadata = Object.fromEntries(Array.from({ length: 32 }, (_, k) => [`key-${k}-${'k'.repeat(56)}`, 'v'.repeat(256)]));
    for (let i = 0; i < 1000; i += 1)
      unwrap(await h.allocate({ requestId: `r-${i}`, tenantId: 't', resources: { memoryMiB: 64, vcpus: 0 }, metadata }));
    let count = 0;
    let after: number | undefined;
    for (;;) {
      const page = unwrap(await h.pageAllocations({ limit: MAX_ALLOCATIONS_PAGE, ...(after === undefined ? {} : { after }) }));
      expect(encode(AgentAllocationsReplySchema.parse(page)).byteLength).toBeLessThan(1024 * 1024);
      count += page.allocations.length;
      if (!page.truncated) break;
      after = page.next;
    }
    expect(count).toBe(1000);
  });
});
