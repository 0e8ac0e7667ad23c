import {
  CpuManagerConfigSchema,
  GenericManagerConfigSchema,
  MemoryManagerConfigSchema,
  err,
  type ConfigProblem,
  type CpuPolicy,
  type HealthThresholds,
  type HostProbe,
  type HostTopology,
  type LimitsInput,
  type NodeMemory,
  type ResourceType,
  type Result,
} from '@allot/core';
import { invalidConfig, problemsOf } from './builder-result.ts';
import { systemClock, type Clock } from './clock.ts';
import { CountingSlice } from './counting/counting-slice.ts';
import { CpuSlice } from './cpu/cpu-slice.ts';
import { NumaMemorySlice } from './memory/numa-memory-slice.ts';
import { validateCpuPoolConfig } from './cpu/index.ts';
import { HostManager, type HostManagerOptions } from './host/host-manager.ts';
import type { ResourceSlice } from './host/slice.ts';

/** What defaults are detected from: the host's topology and total memory, and its memory per NUMA node. */
export interface HostFacts {
  readonly topology?: HostTopology;
  readonly memoryMiB?: number;
  /** The probe's nodeMemory: NUMA nodes a request may pin its memory to, and their hugepage pools. */
  readonly nodeMemory?: readonly NodeMemory[];
}

/** What a creator gets besides the config. */
export interface CreatorContext {
  readonly host: HostFacts;
  /** Where memory and CPU read `used` from; counted types have no probe figure. */
  readonly probe: HostProbe | undefined;
  readonly clock: Clock;
}

/** Builds one resource type's slice from its config (unvalidated input: the creator validates it, every problem reported). */
export type ResourceCreator = (config: Record<string, unknown>, context: CreatorContext) => Result<ResourceSlice>;

function asRecord(config: unknown): Record<string, unknown> | undefined {
  return typeof config === 'object' && config !== null && !Array.isArray(config) ? (config as Record<string, unknown>) : undefined;
}

/**
 * Memory (MiB): capacity defaults to the host's total memory. Accounted host-wide, and per NUMA node for requests that
 * name one or ask for hugepages (memory/numa-memory-slice.ts); a host without node facts offers neither.
 */
const createMemory: ResourceCreator = (config, { host, probe, clock }) => {
  const limits = asRecord(config.limits) ?? {};
  let capacity = limits.capacity;
  if (capacity === undefined) {
    const total = host.memoryMiB ?? probe?.latest()?.memory.totalMiB;
    if (total === undefined)
      return err('unavailable', 'memory capacity not configured and the probe has no sample to detect it from', {
        field: 'limits.capacity',
      });
    capacity = Math.floor(total);
  }
  const parsed = MemoryManagerConfigSchema.safeParse({ ...config, limits: { ...limits, capacity } });
  if (!parsed.success) return invalidConfig(problemsOf('memory', parsed.error));
  return {
    ok: true,
    value: new NumaMemorySlice({ limits: parsed.data.limits, thresholds: parsed.data.health, clock, probe, nodes: host.nodeMemory ?? [] }),
  };
};

/** With a capacity below the host's core count, the lowest core ids are managed. */
function lowestCores(topology: HostTopology, cores: number): HostTopology {
  if (cores >= topology.cores.length) return topology;
  return { ...topology, cores: [...topology.cores].sort((a, b) => a.id - b.id).slice(0, cores) };
}

/** CPU (vCPUs): the host's topology; capacity (logical cores) defaults to its core count, the reserve to the reserved cores named. */
const createCpu: ResourceCreator = (config, { host, probe, clock }) => {
  const topology = host.topology;
  if (topology === undefined || topology.cores.length === 0)
    return invalidConfig([{ path: 'cpu.topology', message: 'a topology with at least one core is required' }]);
  const limits = asRecord(config.limits) ?? {};
  const reservedCores = Array.isArray(config.reservedCores) ? config.reservedCores : [];
  const parsed = CpuManagerConfigSchema.safeParse({
    ...config,
    limits: { capacity: topology.cores.length, systemReserve: reservedCores.length, ...limits },
  });
  if (!parsed.success) return invalidConfig(problemsOf('cpu', parsed.error));
  const c = parsed.data;
  if (c.limits.capacity > topology.cores.length)
    return invalidConfig([
      { path: 'cpu.limits.capacity', message: `the host has ${topology.cores.length} logical cores, not ${c.limits.capacity}` },
    ]);
  const managed = lowestCores(topology, c.limits.capacity);
  const pool = {
    topology: managed,
    reservedCores: c.reservedCores,
    systemReserve: c.limits.systemReserve,
    overcommitRatio: c.limits.overcommitRatio,
    policy: c.policy,
  };
  const problems = validateCpuPoolConfig(c.limits.hardLimit === undefined ? pool : { ...pool, hardLimit: c.limits.hardLimit });
  if (problems.length > 0) return invalidConfig(problems.map((p) => ({ ...p, path: `cpu.${p.path}` })));
  return {
    ok: true,
    value: new CpuSlice({ ...pool, hardLimit: c.limits.hardLimit, softLimit: c.limits.softLimit, thresholds: c.health, clock, probe }),
  };
};

/** Any other type (disk, gpu, custom:<name>): counted integer units against its limits, nothing to detect them from. */
const createCounting: ResourceCreator = (config, { clock }) => {
  const parsed = GenericManagerConfigSchema.safeParse(config);
  if (!parsed.success) return invalidConfig(problemsOf(String(config.resourceType), parsed.error));
  return {
    ok: true,
    value: new CountingSlice({ type: parsed.data.resourceType, limits: parsed.data.limits, thresholds: parsed.data.health, clock }),
  };
};

/**
 * The one way to build a host's managers, for the agent, the tests and the simulator alike: slices by resource type
 * from config, with defaults detected from the host (its topology and memory as the agent probed them, else the
 * probe's sample). memory and cpu are registered; `registerCounting` adds a counted type, `register` any other.
 * `host(nodeId)` is the front: a builder of the HostManager over those slices.
 */
export class ManagerFactory {
  readonly #creators = new Map<ResourceType, ResourceCreator>([
    ['memory', createMemory],
    ['cpu', createCpu],
  ]);
  readonly facts: HostFacts;
  readonly probe: HostProbe | undefined;
  readonly clock: Clock;

  /** `topology` and `memoryMiB`: the host's (the defaults); `probe`: where memory and CPU read `used` from. */
  constructor(options: HostFacts & { probe?: HostProbe; clock?: Clock } = {}) {
    const { probe, clock, ...facts } = options;
    this.facts = facts;
    this.probe = probe;
    this.clock = clock ?? systemClock;
  }

  register(type: ResourceType, creator: ResourceCreator): this {
    this.#creators.set(type, creator);
    return this;
  }

  /** Registers a counted type (disk, custom:<name>, ...): requests ask for it in resources.extra. */
  registerCounting(type: ResourceType): this {
    return this.register(type, createCounting);
  }

  /** One slice from a config `{ resourceType, limits, health, ... }`. */
  slice(config: unknown): Result<ResourceSlice> {
    const record = asRecord(config);
    if (record === undefined) return err('invalid_request', 'config must be an object', { field: 'config' });
    const type = record.resourceType;
    if (typeof type !== 'string') return err('invalid_request', 'resourceType: required', { field: 'resourceType' });
    const creator = this.#creators.get(type as ResourceType);
    if (creator === undefined)
      return err('invalid_request', `no manager registered for resource type ${type}`, { field: 'resourceType', resourceType: type });
    return creator(record, { host: this.facts, probe: this.probe, clock: this.clock });
  }

  /** The front: `factory.host('n1').memory({ capacity: 16384 }).cpu({ overcommitRatio: 2 }).journal(j).build()`. */
  host(nodeId: string): HostBuilder {
    return new HostBuilder(this, nodeId);
  }
}

/** Builds a HostManager from resource configs and options; `build` returns every problem, not only the first. */
export class HostBuilder {
  readonly #factory: ManagerFactory;
  readonly #configs: Record<string, unknown>[] = [];
  #options: Omit<HostManagerOptions, 'slices'>;

  constructor(factory: ManagerFactory, nodeId: string) {
    this.#factory = factory;
    this.#options = { nodeId, clock: factory.clock };
  }

  memory(limits: Partial<LimitsInput> = {}, options: { health?: Partial<HealthThresholds> } = {}): this {
    return this.resource({ ...options, resourceType: 'memory', limits });
  }

  cpu(
    limits: Partial<LimitsInput> = {},
    options: { reservedCores?: readonly number[]; policy?: CpuPolicy; health?: Partial<HealthThresholds> } = {},
  ): this {
    return this.resource({ ...options, resourceType: 'cpu', limits });
  }

  /** Any registered type, by its config `{ resourceType, limits, health, ... }`. */
  resource(config: Record<string, unknown>): this {
    this.#configs.push(config);
    return this;
  }

  #set(patch: Partial<Omit<HostManagerOptions, 'slices' | 'nodeId'>>): this {
    this.#options = { ...this.#options, ...patch };
    return this;
  }
  journal(journal: NonNullable<HostManagerOptions['journal']>): this {
    return this.#set({ journal });
  }
  /** Where a restart reads durable state from (the agent's file ledger); the journal itself when it can replay. */
  durable(durable: NonNullable<HostManagerOptions['durable']>): this {
    return this.#set({ durable });
  }
  releasedRetention(ms: number): this {
    return this.#set({ releasedRetentionMs: ms });
  }

  build(): Result<HostManager> {
    const slices: ResourceSlice[] = [];
    const problems: ConfigProblem[] = [];
    for (const config of this.#configs) {
      const slice = this.#factory.slice(config);
      if (slice.ok) slices.push(slice.value);
      else if (slice.error.code !== 'invalid_request') return slice;
      else
        problems.push(
          ...((slice.error.details?.issues as ConfigProblem[] | undefined) ?? [
            { path: String(slice.error.details?.field ?? 'config'), message: slice.error.message },
          ]),
        );
    }
    if (problems.length > 0) return invalidConfig(problems);
    return HostManager.create({ ...this.#options, slices });
  }
}
