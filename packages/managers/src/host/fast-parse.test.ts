import { AgentAllocateRequestSchema, AgentReleaseRequestSchema, AllocationRequestSchema } from '@allot/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAllocate, parseRelease, parseRequest, parsedAtTheEdge } from './fast-parse.ts';

const id = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_:=-]{1,12}$/), fc.string({ maxLength: 6 }), fc.constant(''), fc.constant('a.b'));
const int = fc.oneof(fc.integer({ min: -3, max: 5000 }), fc.double(), fc.constant(2 ** 31));
/** Objects zod does not treat as plain ones: an array (with or without the right keys), a Date, a Map, a class instance. */
const oddObject = <T extends object>(like: T) =>
  fc.constantFrom<unknown>([], Object.assign([], like), new Date(0), new Map(Object.entries(like)), Object.create(like) as unknown);
const request = fc.record(
  {
    requestId: id,
    tenantId: id,
    resources: fc.oneof(fc.record({ memoryMiB: int, vcpus: int }, { requiredKeys: [] }), oddObject({ memoryMiB: 1, vcpus: 1 })),
    priority: int,
    cpu: fc.oneof(
      fc.record(
        { exclusive: fc.oneof(fc.boolean(), fc.constant('yes')), numa: fc.constantFrom('any', 'prefer', 'require', 'none') },
        { requiredKeys: [] },
      ),
      oddObject({ exclusive: true, numa: 'any' }),
    ),
    reservation: fc.oneof(fc.record({ ttlMs: int }), oddObject({ ttlMs: 5 })),
    metadata: fc.oneof(fc.constantFrom({}, { 'allot.group': 'web' }), oddObject({})),
    fence: fc.oneof(int, fc.constant(Number.MAX_SAFE_INTEGER + 1)),
  },
  { requiredKeys: ['requestId', 'tenantId', 'resources'] },
);
const release = fc.oneof(
  fc.record(
    {
      requestId: id,
      allocationId: id,
      allocationRequestId: id,
      reason: fc.oneof(fc.string({ maxLength: 4 }), fc.constant('x'.repeat(256)), fc.constant('x'.repeat(257)), fc.constant(3)),
      fence: int,
      other: fc.constant(1),
    },
    { requiredKeys: [] },
  ),
  oddObject({ requestId: 'r', allocationId: 'n:1' }),
  fc.constantFrom<unknown>(null, 'r', 7),
);

describe('the fast request parser', () => {
  it('accepts and rejects exactly what the zod schema does, and builds the same request', () => {
    fc.assert(
      fc.property(request, (input) => {
        const fast = parseRequest(input);
        const zod = AllocationRequestSchema.safeParse(input);
        expect(fast.ok).toBe(zod.success);
        if (fast.ok && zod.success) expect(fast.value).toEqual(zod.data);
      }),
      { numRuns: 2000 },
    );
  });

  it('parses the agent allocate (request and fence) exactly as the zod schema does, the fence never in the request', () => {
    fc.assert(
      fc.property(request, (input) => {
        const fast = parseAllocate(input);
        const zod = AgentAllocateRequestSchema.safeParse(input);
        expect(fast.ok).toBe(zod.success);
        if (fast.ok && zod.success) expect(fast.value).toEqual(zod.data);
        const plain = parseRequest(input);
        if (plain.ok) expect('fence' in plain.value).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('parses releases exactly as the zod schema does', () => {
    fc.assert(
      fc.property(release, (input) => {
        const fast = parseRelease(input);
        const zod = AgentReleaseRequestSchema.safeParse(input);
        expect(fast.ok).toBe(zod.success);
        if (fast.ok && zod.success) expect(fast.value).toEqual(zod.data);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('a request parsed at the edge', () => {
  it('is taken as it is by the manager methods, which parse only what nobody parsed before', () => {
    const parsed = parseRequest({ requestId: 'r-1', tenantId: 't', resources: { memoryMiB: 1024, vcpus: 1 } });
    if (!parsed.ok) throw new Error(parsed.error.message);
    // Unmarked, the same request is parsed again: a new object comes back.
    const again = parseRequest(parsed.value);
    expect(again.ok && again.value).not.toBe(parsed.value);
    // Marked by the edge, it is the very object: no second parse.
    const marked = parsedAtTheEdge(parsed.value);
    const taken = parseRequest(marked);
    expect(taken.ok && taken.value).toBe(marked);
    const release = parseRelease({ requestId: 'rel-1', allocationId: 'alloc-1' });
    if (!release.ok) throw new Error(release.error.message);
    const markedRelease = parsedAtTheEdge(release.value);
    expect(parseRelease(markedRelease)).toEqual({ ok: true, value: markedRelease });
    expect((parseRelease(markedRelease) as { value: unknown }).value).toBe(markedRelease);
    // Raw input is still parsed and refused as before.
    expect(parseRequest({ requestId: 'r-2', tenantId: 't', resources: { memoryMiB: -1, vcpus: 1 } }).ok).toBe(false);
  });
});
