import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CpuUsageSchema, type CoreState, type CpuUsage } from './domain.ts';
import {
  coreListLength,
  PackedCores,
  packedCoresOf,
  sharedCoresListed,
  sharedCoresPerNumaListed,
  withPackedCores,
} from './packed-cores.ts';

const count = (max: number) => fc.integer({ min: 0, max });
/** Small values mostly, and now and then one that needs 16, 32 or 64-bit columns. */
const place = fc.oneof({ weight: 8, arbitrary: count(255) }, count(70_000), count(2 ** 33), fc.maxSafeInteger().map(Math.abs));
const coreArb: fc.Arbitrary<CoreState> = fc.record(
  {
    id: fc.oneof(count(511), count(4_095)),
    core: place,
    numa: place,
    socket: place,
    role: fc.constantFrom('shared', 'exclusive', 'reserved'),
    allocationId: fc.constantFrom('a-1', 'a-2', 'n1:0000000000000000000042', 'x'.repeat(160)),
    utilizationPermille: count(1000),
  },
  { requiredKeys: ['id', 'core', 'numa', 'socket', 'role', 'utilizationPermille'], noNullPrototype: true },
);

function cpuOf(cores: CoreState[]): CpuUsage {
  const shared = cores.filter((c) => c.role === 'shared').length;
  return {
    resourceType: 'cpu',
    unit: 'vCPU',
    capacity: cores.length,
    systemReserve: 0,
    effectiveCapacity: cores.length,
    committed: 0,
    used: 0,
    reserved: 0,
    allocationCount: 0,
    sharedCores: shared,
    exclusiveCores: cores.length - shared,
    reservedCores: 0,
    sharedVcpusCommitted: 0,
    sharedVcpusCapacity: shared,
    cores,
    coresDigest: 'd1',
    numa: [{ node: 0, sharedCores: shared, exclusiveCores: 0, reservedCores: 0 }],
  };
}

describe('a packed per-core list', () => {
  it('unpacks to the same cores, every field, for any list', () => {
    fc.assert(
      fc.property(fc.array(coreArb, { maxLength: 300 }), (cores) => {
        const packed = PackedCores.of(cores);
        expect(packed).toBeDefined();
        const back = packed?.unpack() ?? [];
        expect(back).toStrictEqual(cores);
        // Same keys in the same order (a reader that serialises a core sees the same bytes).
        expect(back.map((c) => JSON.stringify(c))).toEqual(cores.map((c) => JSON.stringify(c)));
        expect(packed?.length).toBe(cores.length);
      }),
      { numRuns: 300 },
    );
  });

  it('is read as the list by JSON, spreads and the schema, and counted without unpacking', () => {
    fc.assert(
      fc.property(fc.array(coreArb, { maxLength: 130 }), (cores) => {
        const plain = cpuOf(cores);
        const packed = withPackedCores(plain, PackedCores.of(cores) as PackedCores);
        expect(JSON.stringify(packed)).toBe(JSON.stringify(plain));
        expect({ ...packed }).toStrictEqual(plain);
        expect(CpuUsageSchema.safeParse(packed)).toEqual(CpuUsageSchema.safeParse(plain));
        expect(Object.keys(packed)).toEqual(Object.keys(plain));
        expect(coreListLength(packed)).toBe(cores.length);
        expect(sharedCoresListed(packed)).toBe(sharedCoresListed(plain));
        expect([...sharedCoresPerNumaListed(packed)]).toEqual([...sharedCoresPerNumaListed(plain)]);
        expect(packedCoresOf(plain)).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });

  it('gives every reader its own objects: changing one read leaves the list held', () => {
    const cores: CoreState[] = [{ id: 0, core: 0, numa: 0, socket: 0, role: 'shared', utilizationPermille: 10 }];
    const cpu = withPackedCores(cpuOf(cores), PackedCores.of(cores) as PackedCores);
    (cpu.cores[0] as { role: string }).role = 'exclusive';
    expect(cpu.cores[0]?.role).toBe('shared');
  });

  it('refuses a list that is not the schema shape, so the caller keeps it as it is', () => {
    const ok: CoreState = { id: 1, core: 1, numa: 0, socket: 0, role: 'shared', utilizationPermille: 0 };
    const bad: unknown[] = [
      { ...ok, numa: -1 },
      { ...ok, core: 1.5 },
      { ...ok, role: 'idle' },
      { ...ok, role: 'toString' },
      { ...ok, allocationId: undefined },
      { ...ok, allocationId: 7 },
      { ...ok, extra: true },
      { ...ok, utilizationPermille: '5' },
    ];
    for (const core of bad) expect(PackedCores.of([ok, core as CoreState])).toBeUndefined();
  });
});
