import { describe, expect, it } from 'vitest';
import { parseConstraint } from './constraint.ts';
import { parseMemoryMiB } from './memory.ts';
import { buildPlaceRequest } from './place-request.ts';
import { formatRate, parseRate } from './rate.ts';

describe('rates on the command line', () => {
  it('reads 100/hour as 100 per hour, never divided down to a per-second rate', () => {
    expect(parseRate('place-rate', '100/hour')).toEqual({ ok: true, value: { count: 100, per: 'hour' } });
    expect(parseRate('place-rate', '10/s')).toEqual({ ok: true, value: { count: 10, per: 'second' } });
    expect(parseRate('place-rate', ' 300 / min ')).toEqual({ ok: true, value: { count: 300, per: 'minute' } });
    expect(formatRate({ count: 100, per: 'hour' })).toBe('100/hour');
  });

  it('refuses a rate without a known unit, a zero count or a fraction, naming the flag', () => {
    expect(parseRate('place-rate', '100/day')).toEqual({ ok: false, message: '--place-rate: "day" is not a unit (second, minute, hour)' });
    expect(parseRate('place-rate', '0/hour').ok).toBe(false);
    expect(parseRate('place-rate', '1.5/hour').ok).toBe(false);
    expect(parseRate('place-rate', 'lots').ok).toBe(false);
  });
});

describe('memory amounts on the command line', () => {
  it('reads plain numbers as MiB and binary units as such', () => {
    expect(parseMemoryMiB('memory', '4096')).toEqual({ ok: true, value: 4096 });
    expect(parseMemoryMiB('memory', '4G')).toEqual({ ok: true, value: 4096 });
    expect(parseMemoryMiB('memory', '1.5GiB')).toEqual({ ok: true, value: 1536 });
    expect(parseMemoryMiB('memory', '512MiB')).toEqual({ ok: true, value: 512 });
  });

  it('refuses fractions of a MiB, negative and unknown units', () => {
    expect(parseMemoryMiB('memory', '1.5')).toEqual({ ok: false, message: '--memory: 1.5 is not a whole number of MiB' });
    expect(parseMemoryMiB('memory', '-4').ok).toBe(false);
    expect(parseMemoryMiB('memory', '4GB?').ok).toBe(false);
  });
});

describe('label constraints on the command line', () => {
  it('reads key=value, key!=value, key and !key', () => {
    expect(parseConstraint('zone=z1')).toEqual({ ok: true, value: { key: 'zone', op: 'In', values: ['z1'] } });
    expect(parseConstraint('zone=z1,z2')).toEqual({ ok: true, value: { key: 'zone', op: 'In', values: ['z1', 'z2'] } });
    expect(parseConstraint('zone!=z3')).toEqual({ ok: true, value: { key: 'zone', op: 'NotIn', values: ['z3'] } });
    expect(parseConstraint('gpu')).toEqual({ ok: true, value: { key: 'gpu', op: 'Exists', values: [] } });
    expect(parseConstraint('!gpu')).toEqual({ ok: true, value: { key: 'gpu', op: 'DoesNotExist', values: [] } });
  });

  it('refuses a constraint without a value or with a bad key', () => {
    expect(parseConstraint('zone=').ok).toBe(false);
    expect(parseConstraint('a b').ok).toBe(false);
  });
});

describe('the place request built from flags', () => {
  const id = () => 'req-1';

  it('fills in the contract defaults and a new request id', () => {
    const r = buildPlaceRequest({ tenant: 'demo', memory: '4096', vcpus: '2' }, id);
    expect(r).toEqual({
      ok: true,
      value: {
        request: {
          requestId: 'req-1',
          tenantId: 'demo',
          resources: { memoryMiB: 4096, vcpus: 2 },
          priority: 0,
          cpu: { exclusive: false, numa: 'any' },
          metadata: {},
        },
        placement: { constraints: [], allowPreemption: false },
      },
    });
  });

  it('carries every placement option', () => {
    const r = buildPlaceRequest(
      {
        tenant: 'demo',
        memory: '8G',
        vcpus: '4',
        exclusive: true,
        numa: 'require',
        priority: '500',
        node: 'sim-large',
        constraint: ['zone=z1'],
        group: 'web',
        'max-per-node': '2',
        preempt: true,
        'request-id': 'vm-42',
      },
      id,
    );
    expect(r.ok && r.value).toMatchObject({
      request: {
        requestId: 'vm-42',
        resources: { memoryMiB: 8192, vcpus: 4 },
        priority: 500,
        cpu: { exclusive: true, numa: 'require' },
        metadata: { 'allot.group': 'web' },
      },
      placement: {
        strategy: 'manual',
        nodeId: 'sim-large',
        constraints: [{ key: 'zone', op: 'In', values: ['z1'] }],
        group: { name: 'web', maxPerNode: 2 },
        allowPreemption: true,
      },
    });
  });

  it('refuses bad combinations with a message naming the flag', () => {
    expect(buildPlaceRequest({ memory: '1' }, id)).toEqual({ ok: false, message: '--tenant is required' });
    expect(buildPlaceRequest({ tenant: 'demo' }, id)).toEqual({ ok: false, message: 'ask for something: --memory and/or --vcpus' });
    expect(buildPlaceRequest({ tenant: 'demo', vcpus: '0' }, id)).toEqual({
      ok: false,
      message: '--memory/--vcpus: a request must ask for some resource',
    });
    expect(buildPlaceRequest({ tenant: 'demo', vcpus: '1', strategy: 'spread', node: 'n1' }, id).ok).toBe(false);
    expect(buildPlaceRequest({ tenant: 'demo', vcpus: '1', strategy: 'manual' }, id)).toEqual({
      ok: false,
      message: '--strategy manual needs --node <id>',
    });
    expect(buildPlaceRequest({ tenant: 'demo', vcpus: '1', strategy: 'fastest' }, id).ok).toBe(false);
    expect(buildPlaceRequest({ tenant: 'demo', vcpus: '1', numa: 'maybe' }, id)).toEqual({
      ok: false,
      message: '--numa: "maybe" is not any, prefer or require',
    });
    expect(buildPlaceRequest({ tenant: 'demo', vcpus: '1', priority: '1001' }, id)).toEqual({
      ok: false,
      message: '--priority: 1001 is outside 0..1000',
    });
    expect(buildPlaceRequest({ tenant: 'demo', vcpus: '1', 'max-per-node': '1' }, id)).toEqual({
      ok: false,
      message: '--max-per-node goes with --group <name>',
    });
    expect(buildPlaceRequest({ tenant: 'demo', vcpus: '1', 'request-id': 'has space' }, id)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/^--request-id: /),
    });
  });

  it('carries a thread policy (with --exclusive only) and a per-request core policy', () => {
    const built = buildPlaceRequest(
      { tenant: 'demo', vcpus: '4', exclusive: true, 'thread-policy': 'isolate', 'cpu-policy': 'best-fit' },
      id,
    );
    expect(built).toMatchObject({
      ok: true,
      value: { request: { cpu: { exclusive: true, threadPolicy: 'isolate', policy: 'best-fit' } } },
    });
    expect(buildPlaceRequest({ tenant: 'demo', vcpus: '4', 'thread-policy': 'isolate' }, id)).toEqual({
      ok: false,
      message: '--thread-policy goes with --exclusive: shared vCPUs have no siblings to keep',
    });
    expect(buildPlaceRequest({ tenant: 'demo', vcpus: '4', exclusive: true, 'thread-policy': 'dedicated' }, id)).toEqual({
      ok: false,
      message: '--thread-policy: "dedicated" is not isolate, require or prefer',
    });
    expect(buildPlaceRequest({ tenant: 'demo', vcpus: '4', 'cpu-policy': 'fastest' }, id)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/^--cpu-policy: "fastest" is not one of first-fit/),
    });
  });
});
