import { err, validate, type HostTopology, type MemorySample, type Result } from '@allot/core';
import { HostLimitsSchema, type HostLimits } from '@allot/protocol';
import type { AgentConfig } from './schema.ts';

/** What the probe said about the host at start-up. */
export interface ProbedHost {
  readonly topology: HostTopology;
  readonly memory: MemorySample;
}

/**
 * The limits the memory and CPU managers start with: the configured figures, with capacities defaulting to what the
 * probe reads. Checked against the host, which the config schema alone cannot do: a capacity above what the host has
 * (overcommit is the ratio's job, not a made-up capacity), reserved core ids the host does not have, a reserve that
 * leaves nothing. invalid_request lists every problem with the config key. With cpu.cores below the host's count,
 * the CPU manager is expected to use the lowest core ids.
 */
export function resolveHostLimits(config: Pick<AgentConfig, 'memory' | 'cpu'>, host: ProbedHost): Result<HostLimits> {
  const problems: Array<{ path: string; message: string }> = [];
  const hostMiB = host.memory.totalMiB;
  const memoryCapacity = config.memory.capacityMiB ?? hostMiB;
  if (config.memory.capacityMiB !== undefined && config.memory.capacityMiB > hostMiB) {
    problems.push({
      path: 'memory.capacityMiB',
      message: `${config.memory.capacityMiB} MiB is more than the host's ${hostMiB} MiB; overcommit with memory.overcommitRatio instead`,
    });
  }
  if (config.memory.systemReserveMiB >= memoryCapacity) {
    problems.push({
      path: 'memory.systemReserveMiB',
      message: `${config.memory.systemReserveMiB} MiB leaves nothing of the ${memoryCapacity} MiB capacity`,
    });
  }

  const hostCores = host.topology.cores.length;
  const cpuCapacity = config.cpu.cores ?? hostCores;
  if (config.cpu.cores !== undefined && config.cpu.cores > hostCores) {
    problems.push({ path: 'cpu.cores', message: `${config.cpu.cores} is more than the host's ${hostCores} logical cores` });
  }
  const ids = new Set(host.topology.cores.map((c) => c.id));
  config.cpu.reservedCores.forEach((id, index) => {
    if (!ids.has(id)) problems.push({ path: `cpu.reservedCores.${index}`, message: `the host has no core ${id}` });
  });
  if (config.cpu.systemReserveCores >= cpuCapacity) {
    problems.push({
      path: 'cpu.systemReserveCores',
      message: `${config.cpu.systemReserveCores} reserved cores leave none of the ${cpuCapacity} cores for VMs`,
    });
  }

  if (problems.length > 0) {
    return err('invalid_request', problems.map((p) => `config error: ${p.path}: ${p.message} (from the host probe)`).join('\n'), {
      problems,
    });
  }
  return validate(HostLimitsSchema, {
    memory: {
      capacity: memoryCapacity,
      systemReserve: config.memory.systemReserveMiB,
      overcommitRatio: config.memory.overcommitRatio,
      softLimit: config.memory.softLimitMiB,
      hardLimit: config.memory.hardLimitMiB,
    },
    cpu: {
      capacity: cpuCapacity,
      systemReserve: config.cpu.systemReserveCores,
      overcommitRatio: config.cpu.overcommitRatio,
      hardLimit: config.cpu.hardLimitVcpus,
    },
  });
}
