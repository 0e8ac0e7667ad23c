import { ok, err, type HostProbe, type HostTopology, type Result } from '@allot/core';
import { CpuManager, HostManager, MemoryManager } from '@allot/managers';
import { SimulatedProbe, SystemProbe } from '@allot/probe';
import type { Logger } from 'pino';
import { resolveHostLimits, type AgentConfig } from './config/index.ts';
import type { LedgerJournal } from './ledger-journal.ts';

/** The probe this agent reads its host from: the real host, or a simulated size (the local cluster's extra hosts). */
export async function createProbe(config: AgentConfig, log: Logger): Promise<Result<HostProbe>> {
  if (config.simulatedHost !== undefined) {
    const simulated = SimulatedProbe.create(config.simulatedHost);
    if (!simulated.ok) return simulated;
    log.info({ size: config.simulatedHost }, 'simulated host: usage is derived from what is committed, not read');
    return ok(simulated.value);
  }
  return ok(new SystemProbe({ logger: log, fallback: config.cpu.cores === undefined ? {} : { cores: config.cpu.cores } }));
}

/** One sampling tick: a probe that cannot read the host (a simulated one) is told what is committed first. */
export async function sampleHost(probe: HostProbe, host: HostManager): Promise<void> {
  if (probe.setCommitted !== undefined) {
    const usage = await host.getUsage();
    if (usage.ok) {
      const memoryMiB = usage.value.find((u) => u.resourceType === 'memory')?.committed ?? 0;
      const vcpus = usage.value.find((u) => u.resourceType === 'cpu')?.committed ?? 0;
      probe.setCommitted({ memoryMiB, vcpus });
    }
  }
  await probe.sample();
}

/** With cpu.cores below the host's count, the agent manages the lowest core ids only. */
function limitTopology(topology: HostTopology, cores: number): HostTopology {
  if (cores >= topology.cores.length) return topology;
  return { ...topology, cores: [...topology.cores].sort((a, b) => a.id - b.id).slice(0, cores) };
}

/**
 * Builds the host's managers from config and the probed host: a MemoryManager and a CpuManager adopted by the
 * HostManager composite, which journals every change to the ledger. Nothing is restored yet.
 */
export async function createHostManager(config: AgentConfig, probe: HostProbe, journal: LedgerJournal): Promise<Result<HostManager>> {
  const topology = await probe.topology();
  const sample = await probe.sample();
  const limits = resolveHostLimits(config, { topology, memory: sample.memory });
  if (!limits.ok) return limits;
  const memory = MemoryManager.create({ nodeId: config.nodeId, limits: limits.value.memory, probe, thresholds: config.health });
  if (!memory.ok) return memory;
  const cpu = CpuManager.create({
    nodeId: config.nodeId,
    topology: limitTopology(topology, limits.value.cpu.capacity),
    reservedCores: config.cpu.reservedCores,
    systemReserve: limits.value.cpu.systemReserve,
    overcommitRatio: limits.value.cpu.overcommitRatio,
    ...(limits.value.cpu.hardLimit === undefined ? {} : { hardLimit: limits.value.cpu.hardLimit }),
    policy: config.cpu.policy,
    probe,
    thresholds: config.health,
  });
  if (!cpu.ok) return cpu;
  const host = HostManager.create({
    nodeId: config.nodeId,
    children: [
      ['memory', memory.value],
      ['cpu', cpu.value],
    ],
    journal,
    durable: () => journal.load(),
  });
  if (!host.ok) return err(host.error.code, `host manager: ${host.error.message}`, host.error.details);
  return host;
}
