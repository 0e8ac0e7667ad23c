// CpuPool take+free pairs per second, per policy, shared and exclusive, on a 32-core and a 256-core host.
// Each pool is first half filled with background grants (so policies scan loaded cores, as on a busy host), then
// one VM-sized request is taken and freed in a loop. Prints figures; asserts nothing.
import type { CpuPolicy, HostTopology } from '@allot/core';
import { CPU_POLICIES } from '@allot/core';
import { CpuPool, topologyFixture } from '../src/cpu/index.ts';
import type { CpuRequest } from '../src/cpu/index.ts';

const hosts: { name: string; topology: HostTopology; reserve: number }[] = [
  {
    name: '32 cores (2 sockets x 8 cores x 2 threads)',
    topology: topologyFixture({ sockets: 2, numaPerSocket: 1, coresPerNuma: 8, threadsPerCore: 2 }),
    reserve: 2,
  },
  {
    name: '256 cores (2 sockets x 2 NUMA x 32 cores x 2 threads)',
    topology: topologyFixture({ sockets: 2, numaPerSocket: 2, coresPerNuma: 32, threadsPerCore: 2 }),
    reserve: 4,
  },
];
const MEASURE_MS = 400;

function pairsPerSecond(pool: CpuPool, request: CpuRequest): number {
  const id = 'bench-vm';
  // Warm up so the figure is the JIT-compiled steady state.
  for (let k = 0; k < 20_000; k += 1) {
    pool.take(id, request);
    pool.free(id);
  }
  let pairs = 0;
  const start = performance.now();
  let now = start;
  while (now - start < MEASURE_MS) {
    for (let k = 0; k < 1000; k += 1) {
      const taken = pool.take(id, request);
      if (!taken.ok) throw new Error(`bench request refused: ${taken.error.message}`);
      pool.free(id);
    }
    pairs += 1000;
    now = performance.now();
  }
  return Math.round((pairs * 1000) / (now - start));
}

function halfFilled(topology: HostTopology, reserve: number, policy: CpuPolicy): CpuPool {
  const pool = new CpuPool({ topology, reservedCores: [], systemReserve: reserve, overcommitRatio: 2, policy });
  const shared = pool.usage().sharedCores;
  // A quarter of the cores pinned, shared vCPUs worth a quarter of the capacity: about half the host in use.
  for (let k = 0; k < shared / 8; k += 1) pool.take(`pinned-${k}`, { vcpus: 2, exclusive: true, numa: 'any' });
  for (let k = 0; k < shared / 4; k += 1) pool.take(`shared-${k}`, { vcpus: 2, exclusive: false, numa: 'any' });
  return pool;
}

for (const host of hosts) {
  console.log(`\n${host.name}, ratio 2, half in use; take+free pairs per second`);
  console.log('policy          shared 4 vCPU   exclusive 4 cores   shared 4 numa=require');
  for (const policy of CPU_POLICIES) {
    const sharedRate = pairsPerSecond(halfFilled(host.topology, host.reserve, policy), { vcpus: 4, exclusive: false, numa: 'any' });
    const exclusiveRate = pairsPerSecond(halfFilled(host.topology, host.reserve, policy), { vcpus: 4, exclusive: true, numa: 'any' });
    const requireRate = pairsPerSecond(halfFilled(host.topology, host.reserve, policy), { vcpus: 4, exclusive: false, numa: 'require' });
    console.log(
      `${policy.padEnd(16)}${String(sharedRate).padStart(13)}${String(exclusiveRate).padStart(20)}${String(requireRate).padStart(24)}`,
    );
  }
}
