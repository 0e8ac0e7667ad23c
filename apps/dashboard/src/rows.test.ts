import { describe, expect, it } from 'vitest';
import { NodeRowSchema, type NodeRow } from '@allot/protocol/http';
import { parseRows } from './rows.ts';

const base: NodeRow = {
  nodeId: 'fleet-00042',
  liveness: 'ready',
  state: 'ready',
  lastSeen: 1_700_000_000_000,
  bootId: 'boot-1',
  seq: 7,
  labels: { zone: 'z1', rack: 'r7' },
  cordoned: false,
  health: { status: 'degraded', reasons: ['disk slow'] },
  memory: { capacity: 262_144, systemReserve: 4_096, effectiveCapacity: 258_048, committed: 1_024, used: 900, reserved: 0 },
  cpu: {
    capacity: 64,
    systemReserve: 2,
    effectiveCapacity: 248,
    committed: 8,
    used: 3,
    reserved: 0,
    sharedCores: 60,
    exclusiveCores: 2,
    reservedCores: 2,
    cores: 64,
  },
  overcommit: { memory: 1, cpu: 4 },
  tenants: ['acme', 'beta'],
  allocationCount: 3,
  heartbeatMs: 30_000,
};

/** Every path of the row, objects included. */
function paths(v: unknown, prefix: string[] = []): string[][] {
  if (typeof v !== 'object' || v === null) return [prefix];
  const keys = Array.isArray(v) ? v.map((_, i) => String(i)) : Object.keys(v);
  return [prefix, ...keys.flatMap((k) => paths((v as Record<string, unknown>)[k], [...prefix, k]))];
}

function withValue(row: NodeRow, path: string[], value: unknown): unknown {
  const copy = structuredClone(row) as unknown as Record<string, unknown>;
  if (path.length === 0) return value;
  let o = copy;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
  const last = path.at(-1) as string;
  if (value === undefined) delete o[last];
  else o[last] = value;
  return copy;
}

const VALUES: unknown[] = [
  undefined,
  null,
  -1,
  0,
  1.5,
  2 ** 53,
  Number.NaN,
  '',
  'x'.repeat(65),
  'x'.repeat(257),
  'x'.repeat(513),
  'a.b',
  'ok',
  'ready',
  'draining',
  'healthy',
  'degraded',
  'stopped',
  true,
  {},
  [],
  ['acme'],
  [''],
  [{ key: 'gpu', value: '', effect: 'NoSchedule' }],
  [{ key: '' }],
  Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])),
];

describe('node rows validated fast', () => {
  it('accepts exactly the rows NodeRowSchema accepts, whatever one field holds', () => {
    let accepted = 0;
    let refused = 0;
    for (const path of paths(base)) {
      for (const value of VALUES) {
        const row = withValue(base, path, value);
        const schema = NodeRowSchema.safeParse(row);
        const fast = parseRows([row]);
        expect({ path: path.join('.'), value, ok: fast.ok }).toEqual({ path: path.join('.'), value, ok: schema.success });
        if (schema.success) accepted += 1;
        else refused += 1;
      }
    }
    expect(accepted).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(500);
  });

  it('gives the schema output for rows it leaves to the schema (taints get their defaults) and the failing row index', () => {
    const tainted = { ...base, taints: [{ key: 'gpu' }] };
    const r = parseRows([base, tainted]);
    expect(r.ok && r.rows[1]?.taints).toEqual([{ key: 'gpu', value: '', effect: 'NoSchedule' }]);
    expect(r.ok && r.rows[0]).toBe(base);
    const bad = parseRows([base, base, { ...base, seq: -1 }]);
    expect(bad.ok ? -1 : bad.index).toBe(2);
  });
});
