import {
  CpuManagerConfigSchema,
  GenericManagerConfigSchema,
  MemoryManagerConfigSchema,
  err,
  ok,
  type HostProbe,
  type ResourceType,
  type Result,
} from '@allot/core';
import { invalidConfig, problemsOf } from './builder-result.ts';
import type { Clock } from './clock.ts';
import { CpuManager } from './cpu-manager/cpu-manager.ts';
import { GenericManager } from './generic/generic-manager.ts';
import type { LocalManager } from './host/local-manager.ts';
import { MemoryManager } from './memory/memory-manager.ts';

/** What a creator gets besides the config: the host probe (defaults are detected from it) and the clock. */
export interface FactoryContext {
  readonly probe: HostProbe;
  readonly clock?: Clock;
  readonly nodeId?: string;
}

/** Builds a manager from a config (unvalidated input: the creator validates it, every problem reported). */
export type ManagerCreator = (config: Record<string, unknown>, context: FactoryContext) => Promise<Result<LocalManager>>;

function asRecord(config: unknown): Record<string, unknown> | undefined {
  return typeof config === 'object' && config !== null && !Array.isArray(config) ? (config as Record<string, unknown>) : undefined;
}

/** Memory: capacity defaults to the probe's total memory (taking a sample if none yet). */
const createMemory: ManagerCreator = async (config, { probe, clock, nodeId }) => {
  const limits = asRecord(config.limits) ?? {};
  let capacity = limits.capacity;
  if (capacity === undefined) {
    const sample = probe.latest() ?? (await probe.sample().catch(() => undefined));
    if (sample === undefined) return err('unavailable', 'memory capacity not configured and the probe has no sample to detect it from', { field: 'limits.capacity' });
    capacity = Math.floor(sample.memory.totalMiB);
  }
  const parsed = MemoryManagerConfigSchema.safeParse({ ...config, limits: { ...limits, capacity } });
  if (!parsed.success) return invalidConfig(problemsOf('config', parsed.error));
  return MemoryManager.create({ limits: parsed.data.limits, thresholds: parsed.data.health, probe, ...(clock ? { clock } : {}), ...(nodeId ? { nodeId } : {}) });
};

/** CPU: capacity is the probe's topology (the core count); a configured capacity must match it. */
const createCpu: ManagerCreator = async (config, { probe, clock, nodeId }) => {
  const topology = await probe.topology();
  const limits = asRecord(config.limits) ?? {};
  const parsed = CpuManagerConfigSchema.safeParse({ ...config, limits: { capacity: topology.cores.length, ...limits } });
  if (!parsed.success) return invalidConfig(problemsOf('config', parsed.error));
  const c = parsed.data;
  if (c.limits.capacity !== topology.cores.length) return invalidConfig([{ path: 'limits.capacity', message: `the host has ${topology.cores.length} logical cores, not ${c.limits.capacity}` }]);
  return CpuManager.create({
    topology,
    reservedCores: c.reservedCores,
    systemReserve: c.reservedCores.length > 0 ? c.reservedCores.length : c.limits.systemReserve,
    overcommitRatio: c.limits.overcommitRatio,
    ...(c.limits.hardLimit !== undefined ? { hardLimit: c.limits.hardLimit } : {}),
    ...(c.limits.softLimit !== undefined ? { softLimit: c.limits.softLimit } : {}),
    policy: c.policy,
    thresholds: c.health,
    probe,
    ...(clock ? { clock } : {}),
    ...(nodeId ? { nodeId } : {}),
  });
};

/** Any other type: counted units, limits required (nothing to detect them from). */
const createGeneric: ManagerCreator = async (config, { clock, nodeId }) => {
  const parsed = GenericManagerConfigSchema.safeParse(config);
  if (!parsed.success) return invalidConfig(problemsOf('config', parsed.error));
  return GenericManager.create({ resourceType: parsed.data.resourceType, limits: parsed.data.limits, thresholds: parsed.data.health, ...(clock ? { clock } : {}), ...(nodeId ? { nodeId } : {}) });
};

/**
 * Creates managers by resource type from config, with defaults detected from the HostProbe it is given (the agent
 * passes the real probe). memory and cpu are registered by default; register more with `register`, or
 * `registerGeneric` for a counted type.
 */
export class ManagerFactory {
  readonly #creators = new Map<ResourceType, ManagerCreator>();
  readonly #context: FactoryContext;

  constructor(context: FactoryContext) {
    this.#context = context;
    this.#creators.set('memory', createMemory);
    this.#creators.set('cpu', createCpu);
  }

  register(type: ResourceType, creator: ManagerCreator): this {
    this.#creators.set(type, creator);
    return this;
  }

  /** Registers the counting manager for a type (disk, custom:<name>, ...). */
  registerGeneric(type: ResourceType): this {
    return this.register(type, createGeneric);
  }

  supports(type: ResourceType): boolean {
    return this.#creators.has(type);
  }

  async create(config: unknown): Promise<Result<LocalManager>> {
    const record = asRecord(config);
    if (record === undefined) return err('invalid_request', 'config must be an object', { field: 'config' });
    const type = record.resourceType;
    if (typeof type !== 'string') return err('invalid_request', 'resourceType: required', { field: 'resourceType' });
    const creator = this.#creators.get(type as ResourceType);
    if (creator === undefined) return err('invalid_request', `no manager registered for resource type ${type}`, { field: 'resourceType', resourceType: type });
    const created = await creator(record, this.#context);
    return created.ok ? ok(created.value) : created;
  }
}
