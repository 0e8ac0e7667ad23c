import { effectiveCapacity } from '@allot/core';
import { FixedProbe } from '@allot/probe';
import { describe, expect, it } from 'vitest';
import { loadAgentConfig, resolveHostLimits, type AgentConfig } from './index.ts';

async function host() {
  const probe = FixedProbe.idle({ cores: 8, sockets: 1, numaNodes: 1, threadsPerCore: 2, memoryMiB: 65_536 });
  return { topology: await probe.topology(), memory: (await probe.sample()).memory };
}

function config(env: Record<string, string>): AgentConfig {
  const loaded = loadAgentConfig({ argv: [], env, readFile: () => '', hostname: 'hv01' });
  if (!loaded.ok) throw new Error(loaded.error.message);
  return loaded.value;
}

describe('the limits the managers start with', () => {
  it('take the host capacity from the probe and apply reserve, overcommit and hard limit', async () => {
    const result = resolveHostLimits(
      config({
        ALLOT_MEMORY_SYSTEM_RESERVE_MIB: '4096',
        ALLOT_MEMORY_OVERCOMMIT: '1.5',
        ALLOT_CPU_RESERVED_CORES: '0,4',
        ALLOT_CPU_OVERCOMMIT: '4',
        ALLOT_CPU_HARD_LIMIT_VCPUS: '20',
      }),
      await host(),
    );
    if (!result.ok) throw new Error(result.error.message);
    expect(result.value.memory).toMatchObject({ capacity: 65_536, systemReserve: 4096, overcommitRatio: 1.5 });
    expect(effectiveCapacity(result.value.memory)).toBe(92_160);
    expect(result.value.cpu).toMatchObject({ capacity: 8, systemReserve: 2, overcommitRatio: 4, hardLimit: 20 });
    expect(effectiveCapacity(result.value.cpu)).toBe(20);
  });

  it('refuses what the host does not have, naming every key', async () => {
    const result = resolveHostLimits(
      config({ ALLOT_MEMORY_CAPACITY_MIB: '131072', ALLOT_CPU_CORES: '16', ALLOT_CPU_RESERVED_CORES: '0,12' }),
      await host(),
    );
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.code).toBe('invalid_request');
      expect((result.error.details?.problems as Array<{ path: string }>).map((p) => p.path)).toEqual([
        'memory.capacityMiB',
        'cpu.cores',
        'cpu.reservedCores.1',
      ]);
    }
  });
});
