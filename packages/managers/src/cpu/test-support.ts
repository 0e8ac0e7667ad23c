import { unwrap } from '@allot/core';
import type { CpuGrant, CpuPolicy } from '@allot/core';
import { CpuPool } from './cpu-pool.ts';
import type { CpuPoolConfig, CpuRequest } from './pool-config.ts';
import { topologyFixture } from './topology-fixture.ts';

/** 2 sockets x 1 NUMA node x 8 cores x 2 threads: node 0 = 0-7,16-23, node 1 = 8-15,24-31; id and id+16 are siblings. */
export const twoSocketHost = topologyFixture({ sockets: 2, numaPerSocket: 1, coresPerNuma: 8, threadsPerCore: 2 });

/** The usual test pool: the 32-core host, 2 reserved cores (0 and its sibling 16), ratio 2. */
export function poolOf(policy: CpuPolicy, overrides: Partial<CpuPoolConfig> = {}): CpuPool {
  return new CpuPool({ topology: twoSocketHost, reservedCores: [], systemReserve: 2, overcommitRatio: 2, policy, ...overrides });
}

export function shared(vcpus: number, numa: CpuRequest['numa'] = 'any'): CpuRequest {
  return { vcpus, exclusive: false, numa };
}

export function exclusive(vcpus: number, numa: CpuRequest['numa'] = 'any'): CpuRequest {
  return { vcpus, exclusive: true, numa };
}

let counter = 0;
/** Take and return the grant, failing the test on a refusal. */
export function grant(pool: CpuPool, request: CpuRequest, id = `vm-${(counter += 1)}`): CpuGrant {
  return unwrap(pool.take(id, request));
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, k) => from + k);
}
