import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  AgentAllocateRequestSchema,
  AgentReleaseRequestSchema,
  AllocationRequestSchema,
  AllocationSchema,
  NodeViewSchema,
  TenantQuotaSchema,
  UsageSnapshotSchema,
} from '@allot/core';
import {
  AgentActivateRequestSchema,
  AgentAllocationsRequestSchema,
  AgentCordonRequestSchema,
  AgentLimitsUpdateRequestSchema,
  AgentReserveRequestSchema,
  AllotEventSchema,
  AvailabilitySchema,
  ClusterCheckReplySchema,
  ClusterReleaseRequestSchema,
  ClusterUsageSchema,
  HostHealthSchema,
  HostLimitsSchema,
  NodeCommandRequestSchema,
  PlaceReplySchema,
  PlaceRequestSchema,
  QuotaGetRequestSchema,
  QuotaSetRequestSchema,
  replySchema,
} from './wire.ts';
import { decode, decodeWith, encode } from './codec.ts';

const request = AllocationRequestSchema.parse({
  requestId: 'req-1',
  tenantId: 'acme',
  resources: { memoryMiB: 4096, vcpus: 2 },
  cpu: { exclusive: true, numa: 'prefer' },
  metadata: { 'allot.group': 'web' },
});

const allocation = AllocationSchema.parse({
  id: 'node-a:1',
  requestId: 'req-1',
  tenantId: 'acme',
  nodeId: 'node-a',
  request,
  granted: { memoryMiB: 4096, vcpus: 2 },
  cpu: { mode: 'exclusive', vcpus: 2, cpuset: [2, 3], numaNodes: [0], numaFallback: false, policy: 'affinity-aware' },
  status: 'active',
  priority: 0,
  createdAt: 1_700_000_000_000,
  updatedAt: 1_700_000_000_000,
});

const resourceUsage = {
  resourceType: 'memory',
  unit: 'MiB',
  capacity: 65536,
  systemReserve: 2048,
  effectiveCapacity: 95232,
  committed: 4096,
  used: 30000,
  reserved: 0,
  allocationCount: 1,
} as const;

const snapshot = UsageSnapshotSchema.parse({
  nodeId: 'node-a',
  bootId: 'b1',
  seq: 12,
  at: 1_700_000_000_000,
  labels: { zone: 'z1' },
  cordoned: false,
  health: { status: 'degraded', reasons: ['memory committed above 95%'] },
  memory: resourceUsage,
  cpu: {
    ...resourceUsage,
    resourceType: 'cpu',
    unit: 'vCPU',
    sharedCores: 6,
    exclusiveCores: 2,
    reservedCores: 0,
    sharedVcpusCommitted: 3,
    sharedVcpusCapacity: 12,
    cores: [{ id: 0, core: 0, numa: 0, socket: 0, role: 'exclusive', allocationId: 'node-a:1', utilizationPermille: 512 }],
  },
  overcommit: { memory: 1.5, cpu: 2 },
  tenants: { acme: { vms: 1, memoryMiB: 4096, vcpus: 2 } },
  groups: { web: 1 },
  allocationCount: 1,
  heartbeatMs: 5000,
});

/** One valid sample of every wire message. */
const samples: Array<[string, z.ZodType, unknown]> = [
  ['agent allocate', AgentAllocateRequestSchema, request],
  ['agent release', AgentReleaseRequestSchema, { requestId: 'rel-1', allocationId: 'node-a:1' }],
  ['agent reserve', AgentReserveRequestSchema, { ...request, reservation: { ttlMs: 60_000 } }],
  ['agent activate', AgentActivateRequestSchema, { requestId: 'act-1', allocationId: 'node-a:1' }],
  ['agent allocations', AgentAllocationsRequestSchema, { status: 'live', limit: 10 }],
  ['agent limits update', AgentLimitsUpdateRequestSchema, { requestId: 'lim-1', memory: { capacity: 1024 }, force: false }],
  ['agent cordon', AgentCordonRequestSchema, { requestId: 'c-1', reason: 'maintenance' }],
  [
    'availability',
    AvailabilitySchema,
    {
      fits: false,
      figures: { memory: { requested: 1, free: 0, effectiveCapacity: 10 } },
      reason: { code: 'insufficient_capacity', message: 'no' },
    },
  ],
  ['host health', HostHealthSchema, { nodeId: 'node-a', health: { status: 'healthy' }, cordoned: false, recoveryMs: 3, startedAt: 1 }],
  [
    'host limits',
    HostLimitsSchema,
    { memory: { capacity: 1024, systemReserve: 0, overcommitRatio: 1 }, cpu: { capacity: 8, systemReserve: 1, overcommitRatio: 4 } },
  ],
  ['allocation', AllocationSchema, allocation],
  ['usage snapshot', UsageSnapshotSchema, snapshot],
  [
    'event',
    AllotEventSchema,
    { kind: 'refused', nodeId: 'node-a', at: 5, requestId: 'r', error: { code: 'insufficient_capacity', message: 'full' } },
  ],
  [
    'place',
    PlaceRequestSchema,
    {
      request,
      placement: {
        strategy: 'spread',
        constraints: [{ key: 'zone', op: 'In', values: ['z1'] }],
        group: { name: 'web', maxPerNode: 1 },
        allowPreemption: true,
      },
    },
  ],
  ['place reply', PlaceReplySchema, { nodeId: 'node-a', allocation, cpuset: [2, 3], preempted: [], attempts: 1 }],
  ['cluster release', ClusterReleaseRequestSchema, { requestId: 'rel-2', placementRequestId: 'req-1' }],
  [
    'cluster check reply',
    ClusterCheckReplySchema,
    { fits: false, candidates: [], rejected: { 'Insufficient memory': 3 }, message: '0/3 nodes are available: 3 Insufficient memory' },
  ],
  [
    'cluster usage',
    ClusterUsageSchema,
    {
      at: 1,
      nodes: { total: 1, ready: 1, suspect: 0, lost: 0, cordoned: 0 },
      memory: { capacity: 1, effectiveCapacity: 1, committed: 0, used: 0 },
      cpu: { capacity: 1, effectiveCapacity: 1, committed: 0, used: 0 },
      allocationCount: 0,
    },
  ],
  ['node view', NodeViewSchema, { nodeId: 'node-a', liveness: 'ready', lastSeen: 1, snapshot }],
  ['tenant quota', TenantQuotaSchema, { tenantId: 'acme', maxVms: 10, placeRates: [{ count: 100, per: 'hour' }] }],
  ['quota set', QuotaSetRequestSchema, { requestId: 'q-1', quota: { tenantId: 'acme', maxVcpus: 64 } }],
  ['quota get', QuotaGetRequestSchema, { tenantId: 'acme' }],
  ['node command', NodeCommandRequestSchema, { requestId: 'd-1', nodeId: 'node-a' }],
  ['ok reply', replySchema(AllocationSchema), { ok: true, value: allocation }],
  [
    'error reply',
    replySchema(AllocationSchema),
    { ok: false, error: { code: 'conflict', message: 'request id reused', details: { requestId: 'req-1' } } },
  ],
];

describe('every wire message', () => {
  it.each(samples)('%s survives encode then decode unchanged', (_name, schema, sample) => {
    const parsed = schema.parse(sample);
    const decoded = decode(schema, encode(parsed));
    expect(decoded).toEqual({ ok: true, value: parsed });
  });
});

describe('decode at the edge', () => {
  it('answers garbage bytes with invalid_request instead of throwing', () => {
    const result = decode(AgentAllocateRequestSchema, new Uint8Array([0xc1, 0xff, 0x00, 0x13]));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe('invalid_request');
  });

  it('can validate with another parser, keeping the size and msgpack checks', () => {
    const seen: unknown[] = [];
    const parse = (raw: unknown) => {
      seen.push(raw);
      return { ok: true as const, value: 'parsed' };
    };
    expect(decodeWith(parse, encode({ a: 1 }))).toEqual({ ok: true, value: 'parsed' });
    expect(seen).toEqual([{ a: 1 }]);
    expect(decodeWith(parse, new Uint8Array([0xc1, 0xff, 0x00, 0x13])).ok).toBe(false);
    expect(decodeWith(parse, new Uint8Array(100), 10).ok).toBe(false);
    expect(seen).toHaveLength(1);
  });

  it('refuses an oversized payload before decoding it', () => {
    const result = decode(AgentAllocateRequestSchema, new Uint8Array(2 * 1024 * 1024));
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.code).toBe('invalid_request');
      expect(result.error.message).toContain('2097152 bytes');
    }
  });
});

describe('decoding hostile msgpack', () => {
  // A peer on the same NATS can send any msgpack, including msgpackr's extension types; a BigInt hidden in an event's
  // error.details once crashed a coordinator's dashboard feed (JSON.stringify throws on BigInt).
  const hostile = new Packr({ moreTypes: true, structuredClone: true, largeBigIntToFloat: false });
  const anything = z.object({ details: z.record(z.string(), z.unknown()) });
  const cases: [string, unknown][] = [
    ['a BigInt', 2n ** 70n],
    ['a Set', new Set([1])],
    ['a RegExp', /x/g],
    ['an Error', new Error('boom')],
    ['a Date', new Date(0)],
    ['a typed array', new Uint16Array([1, 2])],
    ['a byte string', Buffer.from('ab')],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
  ];
  for (const [name, value] of cases) {
    it(`refuses ${name} anywhere in the payload as invalid_request`, () => {
      const decoded = decode(anything, hostile.pack({ details: { deep: [{ value }] } }));
      expect(decoded.ok).toBe(false);
      if (!decoded.ok) {
        expect(decoded.error.code).toBe('invalid_request');
        expect(decoded.error.message).toContain('details.deep.0.value');
      }
    });
  }

  it('refuses a payload nested deeper than 64 levels', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = { d: deep };
    const decoded = decode(z.unknown(), encode(deep));
    expect(decoded.ok).toBe(false);
  });

  it('still accepts plain data: maps, arrays, strings, finite numbers, booleans, null', () => {
    const value = { details: { a: [1, 2.5, 'x', true, null, { b: -3 }] } };
    expect(decode(anything, encode(value))).toEqual({ ok: true, value });
  });
});
