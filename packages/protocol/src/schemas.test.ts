import { describe, expect, it } from 'vitest';
import { AllocationRequestSchema, LimitsSchema, effectiveCapacity, validate, worstHealth } from '@allot/core';
import { PlaceRequestSchema } from './wire.ts';
import { decode, encode } from './codec.ts';

const valid = { requestId: 'req-1', tenantId: 'acme', resources: { memoryMiB: 1024, vcpus: 1 } };

function refusal(input: unknown): string {
  const result = validate(AllocationRequestSchema, input);
  expect(result.ok).toBe(false);
  if (result.ok) return '';
  expect(result.error.code).toBe('invalid_request');
  return result.error.message;
}

describe('an allocation request is refused with the field and the reason when', () => {
  it('an amount has the wrong type', () => {
    expect(refusal({ ...valid, resources: { memoryMiB: '1024', vcpus: 1 } })).toMatch(/^resources\.memoryMiB: .*number/);
  });
  it('an amount is negative', () => {
    expect(refusal({ ...valid, resources: { memoryMiB: -1, vcpus: 1 } })).toMatch(/^resources\.memoryMiB: .*>=0/);
  });
  it('an amount is fractional (integer accounting)', () => {
    expect(refusal({ ...valid, resources: { memoryMiB: 1024, vcpus: 1.5 } })).toMatch(/^resources\.vcpus: .*int/i);
  });
  it('a resource type is unknown', () => {
    expect(refusal({ ...valid, resources: { ...valid.resources, extra: { quantum: 1 } } })).toMatch(/^resources\.extra/);
  });
  it('the metadata is oversized', () => {
    const metadata = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, 'v']));
    expect(refusal({ ...valid, metadata })).toMatch(/^metadata: at most 32 metadata keys/);
  });
  it('a metadata value is too long', () => {
    expect(refusal({ ...valid, metadata: { note: 'x'.repeat(300) } })).toMatch(/^metadata\.note: /);
  });
  it('the request id is missing', () => {
    const { requestId: _drop, ...rest } = valid;
    expect(refusal(rest)).toMatch(/^requestId: /);
  });
  it('the request id contains subject syntax', () => {
    expect(refusal({ ...valid, requestId: 'a.b.>' })).toMatch(/^requestId: /);
  });
  it('nothing is asked for', () => {
    expect(refusal({ ...valid, resources: { memoryMiB: 0, vcpus: 0 } })).toMatch(/^resources: a request must ask for some resource/);
  });
});

describe('custom resource types', () => {
  it('are accepted when written custom:<name>', () => {
    expect(validate(AllocationRequestSchema, { ...valid, resources: { ...valid.resources, extra: { 'custom:fpga': 1, gpu: 2 } } }).ok).toBe(
      true,
    );
  });
});

describe('placement requests', () => {
  it('name the nested field of a bad constraint', () => {
    const bytes = encode({ request: valid, placement: { constraints: [{ key: 'zone', op: 'Near' }] } });
    const result = decode(PlaceRequestSchema, bytes);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.message).toMatch(/^placement\.constraints\.0\.op: /);
  });
});

describe('limits', () => {
  it('compute effective capacity exactly: (capacity - reserve) x ratio', () => {
    expect(effectiveCapacity(LimitsSchema.parse({ capacity: 16384, systemReserve: 1024, overcommitRatio: 1.5 }))).toBe(23040);
    expect(effectiveCapacity(LimitsSchema.parse({ capacity: 3, overcommitRatio: 1.1 }))).toBe(3);
    expect(effectiveCapacity(LimitsSchema.parse({ capacity: 10, overcommitRatio: 1.1 }))).toBe(11);
  });
  it('never exceed the hard limit', () => {
    expect(effectiveCapacity(LimitsSchema.parse({ capacity: 100, overcommitRatio: 2, hardLimit: 150 }))).toBe(150);
  });
  it('refuse an overcommit ratio below 1 and a reserve above capacity, both at once', () => {
    const result = validate(LimitsSchema, { capacity: 10, systemReserve: 20, overcommitRatio: 0.5 });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.message).toMatch(/overcommitRatio/);
  });
});

describe('health', () => {
  it('of a composite is the worst, keeping every reason', () => {
    expect(
      worstHealth([
        { status: 'healthy' },
        { status: 'degraded', reasons: ['memory soft limit crossed'] },
        { status: 'unhealthy', reasons: ['cpu probe stale'] },
      ]),
    ).toEqual({ status: 'unhealthy', reasons: ['memory soft limit crossed', 'cpu probe stale'] });
  });
});
