import { AllocationRequestSchema } from '@allot/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRequest } from './fast-parse.ts';

const id = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_:=-]{1,12}$/), fc.string({ maxLength: 6 }), fc.constant(''), fc.constant('a.b'));
const int = fc.oneof(fc.integer({ min: -3, max: 5000 }), fc.double(), fc.constant(2 ** 31));
const request = fc.record(
  {
    requestId: id,
    tenantId: id,
    resources: fc.record({ memoryMiB: int, vcpus: int }, { requiredKeys: [] }),
    priority: int,
    cpu: fc.record({ exclusive: fc.oneof(fc.boolean(), fc.constant('yes')), numa: fc.constantFrom('any', 'prefer', 'require', 'none') }, { requiredKeys: [] }),
    reservation: fc.record({ ttlMs: int }),
    metadata: fc.constantFrom({}, { 'allot.group': 'web' }),
  },
  { requiredKeys: ['requestId', 'tenantId', 'resources'] },
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
});
