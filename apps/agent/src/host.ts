import { ok, err, type HostProbe, type NodeMemory, type Result } from '@allot/core';
import { ManagerFactory, type HostManager, type ReplayableJournal } from '@allot/managers';
import { SimulatedProbe, SystemProbe } from '@allot/probe';
import type { Logger } from 'pino';
import { resolveHostLimits, type AgentConfig } from './config/index.ts';

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

/**
 * Builds the host's manager through ManagerFactory from config and the probed host: memory, CPU and every counted
 * resource the config names (`resources`), journaling every change to the ledger. Nothing is restored yet.
 */
export async function createHostManager(config: AgentConfig, probe: HostProbe, journal: ReplayableJournal): Promise<Result<HostManager>> {
  const topology = await probe.topology();
  const sample = await probe.sample();
  const nodeMemory = (await probe.nodeMemory?.()) ?? [];
  // Hugepage pools are not regular memory: the memory capacity (and its default) leaves them out.
  const totalMiB = Math.max(0, sample.memory.totalMiB - hugepagesMiB(nodeMemory));
  const limits = resolveHostLimits(config, { topology, memory: { ...sample.memory, totalMiB } });
  if (!limits.ok) return limits;
  const factory = new ManagerFactory({ topology, memoryMiB: totalMiB, nodeMemory, probe });
  const builder = factory
    .host(config.nodeId)
    .memory(limits.value.memory, { health: config.health })
    .cpu(limits.value.cpu, { reservedCores: config.cpu.reservedCores, policy: config.cpu.policy, health: config.health })
    .journal(journal)
    .durable(() => journal.load());
  for (const resource of config.resources ?? []) {
    factory.registerCounting(resource.resourceType);
    builder.resource(resource);
  }
  const host = builder.build();
  if (!host.ok) return err(host.error.code, `host manager: ${host.error.message}`, host.error.details);
  return host;
}

/** The memory the host's hugepage pools hold, in MiB (sizes that are not whole MiB are not offered, nor counted). */
function hugepagesMiB(nodes: readonly NodeMemory[]): number {
  let sum = 0;
  for (const node of nodes) for (const pool of node.hugepages) if (pool.sizeKiB % 1024 === 0) sum += (pool.sizeKiB / 1024) * pool.total;
  return sum;
}
