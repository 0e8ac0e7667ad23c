/** @allot/probe: what a host really has and uses (SystemProbe), a simulated host (SimulatedProbe), a fake for tests (FixedProbe). */
export { SystemProbe, type ProbeFallback, type SystemProbeOptions } from './system-probe.ts';
export { layoutCores, validateLayout, type CoreLayout, type HostSize } from './host-size.ts';
export { readSysTopology, type SysTopologyReading } from './sys-topology.ts';
export { readNodeMemory, type NodeMemoryReading } from './sys-node-memory.ts';
export { parseCpuList } from './cpulist.ts';
export { SimulatedProbe, SIMULATED_USAGE, simulatedSample } from './simulated-probe.ts';
export { FixedProbe, type FixedFigures } from './fixed-probe.ts';
