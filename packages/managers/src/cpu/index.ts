/** The CPU pool: pure accounting of a host's cores and the policies that choose them. */
export { CpuPool } from './cpu-pool.ts';
export type { CpuPoolChange } from './cpu-pool.ts';
export { validateCpuPoolConfig } from './pool-config.ts';
export type { CpuPoolConfig, CpuRequest } from './pool-config.ts';
export { topologyFixture } from './topology-fixture.ts';
export type { TopologySpec } from './topology-fixture.ts';
export type { Fragmentation } from './fragmentation.ts';
