import { describe, expect, it } from 'vitest';
import { FixedProbe } from './fixed-probe.ts';
import { SIMULATED_USAGE, SimulatedProbe } from './simulated-probe.ts';

const SIZE = { cores: 16, sockets: 2, numaNodes: 2, threadsPerCore: 2, memoryMiB: 65_536 };
const clock = () => 1_700_000_000_000;

function probe() {
  const created = SimulatedProbe.create(SIZE, { now: clock });
  if (!created.ok) throw new Error(created.error.message);
  return created.value;
}

describe('a simulated host', () => {
  it('has the configured topology, labelled as configured', async () => {
    const topology = await probe().topology();
    expect(topology.source).toBe('config');
    expect(topology.cores).toHaveLength(16);
    expect(new Set(topology.cores.map((c) => c.core)).size).toBe(8);
    expect(new Set(topology.cores.map((c) => c.socket))).toEqual(new Set([0, 1]));
    // Siblings share a physical core, a NUMA node and a socket.
    const byId = new Map(topology.cores.map((c) => [c.id, c]));
    expect(byId.get(3)).toEqual({ ...byId.get(11), id: 3 });
  });

  it('uses only its base when nothing is committed', async () => {
    const sample = await probe().sample();
    expect(sample.memory).toEqual({
      totalMiB: 65_536,
      usedMiB: SIMULATED_USAGE.baseMemoryMiB,
      availableMiB: 65_536 - SIMULATED_USAGE.baseMemoryMiB,
    });
    expect(sample.cpu.totalPermille).toBe(SIMULATED_USAGE.baseCorePermille);
    expect(sample.at).toBe(clock());
  });

  it('uses a fixed share of what is committed, the same every time', async () => {
    const p = probe();
    expect(p.setCommitted({ memoryMiB: 8192, vcpus: 8 }).ok).toBe(true);
    const first = await p.sample();
    const second = await p.sample();
    expect(first).toEqual(second);
    expect(first.memory.usedMiB).toBe(1024 + 6144);
    // 16 cores x 50 + 8 vCPUs x 200 = 2400 per mille over 16 cores.
    expect(first.cpu.totalPermille).toBe(150);
    expect([...first.cpu.perCorePermille.values()].reduce((a, b) => a + b, 0)).toBe(2400);
  });

  it('never reports more used than the host has', async () => {
    const p = probe();
    p.setCommitted({ memoryMiB: 1_000_000, vcpus: 1000 });
    const sample = await p.sample();
    expect(sample.memory.usedMiB).toBe(65_536);
    expect(sample.memory.availableMiB).toBe(0);
    expect([...sample.cpu.perCorePermille.values()].every((v) => v === 1000)).toBe(true);
  });

  it('refuses a host size that cannot exist, naming the field', () => {
    const result = SimulatedProbe.create({ ...SIZE, threadsPerCore: 3 });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.code).toBe('invalid_request');
      expect(result.error.message).toMatch(/^threadsPerCore:/);
    }
    const noMemory = SimulatedProbe.create({ ...SIZE, memoryMiB: 0 });
    expect(!noMemory.ok && noMemory.error.message.startsWith('memoryMiB:')).toBe(true);
  });

  it('refuses bad committed figures and keeps the previous ones', async () => {
    const p = probe();
    p.setCommitted({ memoryMiB: 2048, vcpus: 0 });
    const result = p.setCommitted({ memoryMiB: 1.5, vcpus: 2 });
    expect(!result.ok && result.error.message.startsWith('memoryMiB:')).toBe(true);
    expect((await p.sample()).memory.usedMiB).toBe(1024 + 1536);
  });
});

describe('the fixed probe for tests', () => {
  it('returns the figures the test set, stamped by the test clock, and nothing before the first sample', async () => {
    let now = 10;
    const p = FixedProbe.idle({ cores: 4, sockets: 1, numaNodes: 1, threadsPerCore: 1, memoryMiB: 1024 }, { now: () => now });
    expect(p.latest()).toBeUndefined();
    p.set({ memory: { totalMiB: 1024, usedMiB: 512, availableMiB: 512 } });
    now = 20;
    const sample = await p.sample();
    expect(sample.at).toBe(20);
    expect(sample.memory.usedMiB).toBe(512);
    expect(p.latest()).toBe(sample);
    expect(p.samples).toBe(1);
  });
});

describe('a simulated host with hugepages', () => {
  it('has the configured pools on every NUMA node, all free, inside the node memory', async () => {
    const p = SimulatedProbe.create({ ...SIZE, hugepages2MiPerNode: 512, hugepages1GiPerNode: 2 }, { now: clock });
    if (!p.ok) throw new Error(p.error.message);
    expect(await p.value.nodeMemory()).toEqual(
      [0, 1].map((node) => ({
        node,
        totalMiB: 32_768,
        hugepages: [
          { sizeKiB: 2048, total: 512, free: 512 },
          { sizeKiB: 1_048_576, total: 2, free: 2 },
        ],
      })),
    );
  });

  it('refuses pools larger than a node, naming the figures', () => {
    const p = SimulatedProbe.create({ ...SIZE, hugepages1GiPerNode: 33 });
    expect(p.ok ? 'created' : p.error.message).toBe('hugepages: 33792 MiB of hugepages per NUMA node is more than its 32768 MiB of memory');
    expect(SimulatedProbe.create({ ...SIZE, hugepages2MiPerNode: -1 }).ok).toBe(false);
  });
});
