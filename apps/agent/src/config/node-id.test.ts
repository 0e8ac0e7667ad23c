import fc from 'fast-check';
import { NodeIdSchema } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { nodeIdFromHostname } from './node-id.ts';

describe('the default node id', () => {
  it('keeps a fully qualified hostname recognisable', () => {
    expect(nodeIdFromHostname('hv01.dc1.example.com')).toBe('hv01-dc1-example-com');
    expect(nodeIdFromHostname('')).toBe('agent');
  });

  it('is a valid node id whatever the hostname', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (hostname) => NodeIdSchema.safeParse(nodeIdFromHostname(hostname)).success));
  });
});
