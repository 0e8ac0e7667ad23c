import { CPU_POLICIES, MAX_CORE_ID, MAX_VCPUS, err, ok } from '@allot/core';
import type { ConfigProblem, CpuPolicy, CpuThreadPolicy, HostTopology, NumaPolicy, Result } from '@allot/core';

/** How a CpuPool is set up. Validate with validateCpuPoolConfig before constructing: the constructor throws on a bad one. */
export interface CpuPoolConfig {
  /** The host's logical cores (from the probe, or topologyFixture for configured hosts). */
  topology: HostTopology;
  /** Explicit ids of the cores kept for the host itself; may be empty. */
  reservedCores: readonly number[];
  /** When reservedCores is empty: how many cores to keep for the host (the lowest ids, SMT siblings together). */
  systemReserve: number;
  /** vCPUs per shared logical core: a real number >= 1 with at most two decimals, applied as an integer percentage. */
  overcommitRatio: number;
  /** Committed vCPUs never exceed this, whatever the ratio. */
  hardLimit?: number;
  /** Which cores a grant gets. */
  policy: CpuPolicy;
}

/** What a caller asks of the pool: how many vCPUs, whether on dedicated cores, and how NUMA-local. */
export interface CpuRequest {
  vcpus: number;
  exclusive: boolean;
  numa: NumaPolicy;
  /** Only with exclusive: how SMT siblings are used (see CpuThreadPolicySchema); absent, the core policy decides. */
  threadPolicy?: CpuThreadPolicy | undefined;
  /** This request's core policy; absent, the pool's. */
  policy?: CpuPolicy | undefined;
  /**
   * With numa require: the NUMA node ids a one-node grant may use (the agent's single-node fitting passes the nodes
   * where the request's memory and hugepages fit, see host/numa-cell.ts); absent, any node.
   */
  numaNodes?: readonly number[] | undefined;
}

/** Upper bound of the overcommit ratio, the same as LimitsSchema's. */
const MAX_RATIO = 64;

function isNonNegativeInt(value: unknown, max = Number.MAX_SAFE_INTEGER): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max;
}

/** True for a ratio LimitsSchema accepts: finite, 1..64, at most two decimals. */
export function isValidRatio(ratio: unknown): ratio is number {
  return (
    typeof ratio === 'number' &&
    Number.isFinite(ratio) &&
    ratio >= 1 &&
    ratio <= MAX_RATIO &&
    Math.abs(Math.round(ratio * 100) - ratio * 100) < 1e-9
  );
}

/** Every problem with the topology, not the first. */
function topologyProblems(topology: HostTopology | undefined, problems: ConfigProblem[]): void {
  const cores = topology?.cores;
  if (!Array.isArray(cores) || cores.length === 0) {
    problems.push({ path: 'topology.cores', message: 'the topology must list at least one logical core' });
    return;
  }
  if (cores.length > MAX_CORE_ID + 1) problems.push({ path: 'topology.cores', message: `at most ${MAX_CORE_ID + 1} logical cores` });
  const seen = new Set<number>();
  // A physical core's threads share one NUMA node and socket; disagreeing siblings mean a broken probe.
  const placeOfPhysical = new Map<number, string>();
  cores.forEach((core, i) => {
    const at = `topology.cores[${i}]`;
    if (!isNonNegativeInt(core.id, MAX_CORE_ID)) problems.push({ path: `${at}.id`, message: `must be an integer 0..${MAX_CORE_ID}` });
    else if (seen.has(core.id)) problems.push({ path: `${at}.id`, message: `core id ${core.id} appears twice` });
    else seen.add(core.id);
    for (const field of ['core', 'numa', 'socket'] as const) {
      if (!isNonNegativeInt(core[field], MAX_CORE_ID))
        problems.push({ path: `${at}.${field}`, message: `must be an integer 0..${MAX_CORE_ID}` });
    }
    const place = `${core.numa}/${core.socket}`;
    const known = placeOfPhysical.get(core.core);
    if (known === undefined) placeOfPhysical.set(core.core, place);
    else if (known !== place)
      problems.push({ path: `${at}.core`, message: `SMT siblings of physical core ${core.core} sit on different NUMA nodes or sockets` });
  });
}

/** Every problem in a CPU pool config, not only the first; an empty list means valid. */
export function validateCpuPoolConfig(config: CpuPoolConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  topologyProblems(config.topology, problems);
  const cores = Array.isArray(config.topology?.cores) ? config.topology.cores : [];
  const ids = new Set(cores.map((c) => c.id));
  const coreCount = cores.length;

  const reserved = config.reservedCores;
  if (!Array.isArray(reserved)) {
    problems.push({ path: 'reservedCores', message: 'must be a list of core ids (may be empty)' });
  } else {
    const seen = new Set<number>();
    reserved.forEach((id, i) => {
      if (!isNonNegativeInt(id, MAX_CORE_ID))
        problems.push({ path: `reservedCores[${i}]`, message: `must be an integer 0..${MAX_CORE_ID}` });
      else if (!ids.has(id)) problems.push({ path: `reservedCores[${i}]`, message: `core ${id} is not in the topology` });
      else if (seen.has(id)) problems.push({ path: `reservedCores[${i}]`, message: `core ${id} is listed twice` });
      else seen.add(id);
    });
    if (coreCount > 0 && seen.size >= coreCount)
      problems.push({ path: 'reservedCores', message: 'reserves every core: nothing is left to grant' });
  }

  if (!isNonNegativeInt(config.systemReserve)) {
    problems.push({ path: 'systemReserve', message: 'must be a non-negative integer count of cores' });
  } else if (Array.isArray(reserved) && reserved.length > 0) {
    if (config.systemReserve !== 0 && config.systemReserve !== reserved.length) {
      problems.push({
        path: 'systemReserve',
        message: `says ${config.systemReserve} cores but reservedCores lists ${reserved.length}; give one or make them agree`,
      });
    }
  } else if (coreCount > 0 && config.systemReserve >= coreCount) {
    problems.push({ path: 'systemReserve', message: `reserves ${config.systemReserve} of ${coreCount} cores: nothing is left to grant` });
  }

  if (!isValidRatio(config.overcommitRatio)) {
    problems.push({ path: 'overcommitRatio', message: `must be a number from 1 to ${MAX_RATIO} with at most two decimals` });
  }
  if (config.hardLimit !== undefined && !isNonNegativeInt(config.hardLimit)) {
    problems.push({ path: 'hardLimit', message: 'must be a non-negative integer count of vCPUs' });
  }
  if (!(CPU_POLICIES as readonly unknown[]).includes(config.policy)) {
    problems.push({ path: 'policy', message: `must be one of ${CPU_POLICIES.join(', ')}` });
  }
  return problems;
}

/** Shared by every valid request: nothing to allocate on the hot path. */
const VALID: Result<void> = ok(undefined);

/** A request's own shape, checked before any capacity question: vcpus a positive integer, numa a known policy. */
export function validateCpuRequest(request: CpuRequest): Result<void> {
  if (!Number.isInteger(request.vcpus) || request.vcpus < 1 || request.vcpus > MAX_VCPUS) {
    return err('invalid_request', `vcpus must be an integer from 1 to ${MAX_VCPUS}`, { field: 'vcpus', value: request.vcpus });
  }
  if (typeof request.exclusive !== 'boolean') {
    return err('invalid_request', 'exclusive must be true or false', { field: 'exclusive' });
  }
  // A plain comparison rather than NumaPolicySchema.safeParse: this runs on every take, and zod costs microseconds.
  if (request.numa !== 'any' && request.numa !== 'prefer' && request.numa !== 'require') {
    return err('invalid_request', 'numa must be any, prefer or require', { field: 'numa', value: request.numa });
  }
  const thread = request.threadPolicy;
  if (thread !== undefined) {
    if (thread !== 'isolate' && thread !== 'require' && thread !== 'prefer') {
      return err('invalid_request', 'threadPolicy must be isolate, require or prefer', { field: 'threadPolicy', value: thread });
    }
    // As in Nova, a thread policy is about dedicated cores: shared vCPUs float and have no siblings to keep.
    if (!request.exclusive)
      return err('invalid_request', 'threadPolicy applies to exclusive requests only', { field: 'threadPolicy', value: thread });
  }
  if (request.policy !== undefined && !(CPU_POLICIES as readonly unknown[]).includes(request.policy)) {
    return err('invalid_request', `policy must be one of ${CPU_POLICIES.join(', ')}`, { field: 'policy', value: request.policy });
  }
  return VALID;
}
