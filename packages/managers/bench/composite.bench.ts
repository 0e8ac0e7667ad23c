// In-process allocate+release pairs per second for a HostManager with memory only, CPU only, and both (MemoryJournal,
// no persistence), sequential (one ask at a time) and with many asks in flight; memory + CPU once with shared vCPUs
// and once with exclusive (pinned) cores. Prints figures; asserts nothing.
import { unwrap, type AllocationRequestInput } from '@allot/core';
import { inFlight } from '../../../test/harness/bench.ts';
import { ManagerFactory, MemoryJournal, topologyFixture, type HostManager, type Journal } from '../src/index.ts';

const topology = topologyFixture({ sockets: 2, numaPerSocket: 1, coresPerNuma: 16, threadsPerCore: 2 });
const factory = new ManagerFactory({ topology });
const memory = () =>
  unwrap(
    factory
      .host('bench')
      .memory({ capacity: 1 << 20 })
      .build(),
  );
const cpu = () => unwrap(factory.host('bench').cpu({ overcommitRatio: 4 }).build());
const host = () =>
  unwrap(
    factory
      .host('bench')
      .memory({ capacity: 1 << 20 })
      .cpu({ overcommitRatio: 4 })
      .journal(new MemoryJournal())
      .build(),
  );
// "Without persistence", as the goal reads: records are made (the manager cannot tell) but kept nowhere. MemoryJournal
// keeps every record in memory for actor restarts, which under this churn is a growing heap the collector walks.
const discard: Journal = { append: () => Promise.resolve() };
const hostNoJournal = () =>
  unwrap(
    factory
      .host('bench')
      .memory({ capacity: 1 << 20 })
      .cpu({ overcommitRatio: 4 })
      .journal(discard)
      .build(),
  );

let shape = { memoryMiB: 1024, vcpus: 2 };
let cpuOptions: AllocationRequestInput['cpu'] = undefined;
function request(i: number): AllocationRequestInput {
  const r: AllocationRequestInput = { requestId: `r${i}`, tenantId: 'bench', resources: shape };
  if (cpuOptions !== undefined) r.cpu = cpuOptions;
  return r;
}

async function sequential(manager: HostManager, pairs: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < pairs; i += 1) {
    const a = await manager.allocate(request(i));
    if (!a.ok) throw new Error(a.error.message);
    const r = await manager.release({ requestId: `x${i}`, allocationId: a.value.id });
    if (!r.ok) throw new Error(r.error.message);
  }
  return pairs / ((performance.now() - start) / 1000);
}

async function pairsInFlight(manager: HostManager, pairs: number, width: number): Promise<number> {
  const { ms } = await inFlight(pairs, width, async (i) => {
    const a = await manager.allocate(request(1e9 + i));
    if (!a.ok) throw new Error(a.error.message);
    const r = await manager.release({ requestId: `y${i}`, allocationId: a.value.id });
    if (!r.ok) throw new Error(r.error.message);
  });
  return pairs / (ms / 1000);
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const pairs = Number(process.argv[2] ?? 100_000);
for (const [name, make, resources, exclusive] of [
  ['HostManager, memory only', memory, { memoryMiB: 1024, vcpus: 0 }, false],
  ['HostManager, cpu only', cpu, { memoryMiB: 0, vcpus: 2 }, false],
  ['HostManager, shared cpu', host, { memoryMiB: 1024, vcpus: 2 }, false],
  ['HostManager, exclusive cpu', host, { memoryMiB: 1024, vcpus: 2 }, true],
  ['HostManager, shared, no journal', hostNoJournal, { memoryMiB: 1024, vcpus: 2 }, false],
] as const) {
  shape = resources;
  cpuOptions = exclusive ? { exclusive: true } : undefined;
  await sequential(make(), 5_000); // warm-up
  const seq = await sequential(make(), pairs);
  // Exclusive grants pin whole cores: 24 VMs of 2 cores fit the 64-core host, 64 would not.
  const width = exclusive ? 24 : 64;
  const par = await pairsInFlight(make(), pairs, width);
  console.log(
    `${name.padEnd(32)} sequential ${fmt(seq).padStart(9)} pairs/s   ${String(width).padStart(2)} in flight ${fmt(par).padStart(9)} pairs/s`,
  );
}
