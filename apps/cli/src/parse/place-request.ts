import { randomUUID } from 'node:crypto';
import {
  CPU_POLICIES,
  CPU_THREAD_POLICIES,
  formatIssues,
  MAX_RESERVATION_TTL_MS,
  PLACEMENT_STRATEGIES,
  type LabelConstraint,
  type MemoryOptions,
  type PlacementOptions,
} from '@allot/core';
import { PlaceRequestSchema, type PlaceRequest } from '@allot/protocol';
import { parseInteger, parsedOk, usageProblem, type Parsed } from '../args.ts';
import { parseConstraint } from './constraint.ts';
import { parseAffinity, parseToleration } from './placement-terms.ts';
import { parseMemoryMiB } from './memory.ts';

/** The flags of `allot place` and `allot check`. */
export const PLACE_OPTIONS = {
  tenant: { type: 'string' },
  memory: { type: 'string' },
  vcpus: { type: 'string' },
  exclusive: { type: 'boolean' },
  numa: { type: 'string' },
  'numa-node': { type: 'string' },
  hugepages: { type: 'string' },
  'thread-policy': { type: 'string' },
  'cpu-policy': { type: 'string' },
  priority: { type: 'string' },
  strategy: { type: 'string' },
  node: { type: 'string' },
  'domain-label': { type: 'string' },
  constraint: { type: 'string', multiple: true },
  group: { type: 'string' },
  'max-per-node': { type: 'string' },
  toleration: { type: 'string', multiple: true },
  'max-skew': { type: 'string' },
  'spread-label': { type: 'string' },
  affinity: { type: 'string', multiple: true },
  'prefer-affinity': { type: 'string', multiple: true },
  preempt: { type: 'boolean' },
  reserve: { type: 'string' },
  'request-id': { type: 'string' },
} as const;

export const PLACE_HELP = `  --tenant <t>            the tenant (required)
  --memory <MiB>          memory in MiB (4096), or with a binary unit (4G = 4GiB = 4096 MiB)
  --vcpus <n>             vCPUs
  --exclusive             whole dedicated cores, pinned, never overcommitted (default: the shared pool)
  --numa any|prefer|require   NUMA locality of the cores (default any); with require and no --numa-node, the
                          cores, memory and hugepages all come from one NUMA node where they all fit
  --numa-node <n>         take the memory (and hugepages) from this NUMA node, or be refused naming it
  --hugepages <size>:<n>  n hugepages of 2Mi or 1Gi besides --memory (kube's hugepages-2Mi), e.g. 2Mi:512
  --thread-policy isolate|require|prefer   with --exclusive, SMT siblings: isolate = one vCPU per physical core,
                          its siblings held idle (and counted as used); require = whole cores only; prefer = whole
                          cores first (default: the core policy decides and may split siblings)
  --cpu-policy <p>        ${CPU_POLICIES.join(', ')}: how the host chooses cores for this request
                          (default: the host's configured policy)
  --priority <0..1000>    default 0
  --strategy <s>          ${PLACEMENT_STRATEGIES.join(', ')} (default: the coordinator's)
  --node <id>             this node only (strategy manual)
  --domain-label <key>    with --strategy spread-domain: the label to spread over (default zone)
  --constraint <c>        node label constraint, repeatable: zone=z1, zone=z1,z2, zone!=z3, gpu (exists), !gpu
  --group <name>          anti-affinity group; --max-per-node <n> of it on one node (default 1)
  --toleration <t>        tolerate a node taint, repeatable: key=value (that value), key (any value); :NoSchedule optional
  --max-skew <n>          hard spread: the group's (else the tenant's) VMs in a domain of --spread-label (default zone)
                          at most n above the least loaded domain; nodes without the label are refused
  --affinity <g[@label]>  only near group g's VMs: on the same node, or in the same label domain; repeatable
  --prefer-affinity <g[@label][=w]>   rank nodes near group g first (weight 1..100, default 100); repeatable
  --preempt               allow evicting allocations at least 10 priority points lower when nothing else fits
  --reserve <seconds>     hold the capacity as a reservation that expires after this long unless activated
                          (allot activate <allocationId>)
  --request-id <id>       the idempotency key (default: a new UUID); the same id again returns the same placement`;

export interface PlaceFlags {
  tenant?: string | undefined;
  memory?: string | undefined;
  vcpus?: string | undefined;
  exclusive?: boolean | undefined;
  numa?: string | undefined;
  'numa-node'?: string | undefined;
  hugepages?: string | undefined;
  'thread-policy'?: string | undefined;
  'cpu-policy'?: string | undefined;
  priority?: string | undefined;
  strategy?: string | undefined;
  node?: string | undefined;
  'domain-label'?: string | undefined;
  constraint?: string[] | undefined;
  group?: string | undefined;
  'max-per-node'?: string | undefined;
  toleration?: string[] | undefined;
  'max-skew'?: string | undefined;
  'spread-label'?: string | undefined;
  affinity?: string[] | undefined;
  'prefer-affinity'?: string[] | undefined;
  preempt?: boolean | undefined;
  reserve?: string | undefined;
  'request-id'?: string | undefined;
}

/**
 * The flags as a place request, validated against the contract's own schema so a request the coordinator would refuse
 * as invalid is a usage error here, before anything is sent. `newId` makes the default request id testable.
 */
export function buildPlaceRequest(f: PlaceFlags, newId: () => string = randomUUID): Parsed<PlaceRequest> {
  if (f.tenant === undefined) return usageProblem('--tenant is required');
  if (f.memory === undefined && f.vcpus === undefined) return usageProblem('ask for something: --memory and/or --vcpus');
  const memory = f.memory === undefined ? parsedOk(0) : parseMemoryMiB('memory', f.memory);
  if (!memory.ok) return memory;
  const vcpus = f.vcpus === undefined ? parsedOk(0) : parseInteger('vcpus', f.vcpus, 0, 65_536);
  if (!vcpus.ok) return vcpus;
  let priority: number | undefined;
  if (f.priority !== undefined) {
    const p = parseInteger('priority', f.priority, 0, 1000);
    if (!p.ok) return p;
    priority = p.value;
  }
  if (f.numa !== undefined && !['any', 'prefer', 'require'].includes(f.numa))
    return usageProblem(`--numa: "${f.numa}" is not any, prefer or require`);
  const memoryOptions = parseMemoryOptions(f);
  if (!memoryOptions.ok) return memoryOptions;
  const threadPolicy = f['thread-policy'];
  if (threadPolicy !== undefined) {
    if (!(CPU_THREAD_POLICIES as readonly string[]).includes(threadPolicy))
      return usageProblem(`--thread-policy: "${threadPolicy}" is not isolate, require or prefer`);
    if (f.exclusive !== true) return usageProblem('--thread-policy goes with --exclusive: shared vCPUs have no siblings to keep');
  }
  const cpuPolicy = f['cpu-policy'];
  if (cpuPolicy !== undefined && !(CPU_POLICIES as readonly string[]).includes(cpuPolicy))
    return usageProblem(`--cpu-policy: "${cpuPolicy}" is not one of ${CPU_POLICIES.join(', ')}`);
  let strategy = f.strategy;
  if (strategy !== undefined && !(PLACEMENT_STRATEGIES as readonly string[]).includes(strategy)) {
    return usageProblem(`--strategy: "${strategy}" is not one of ${PLACEMENT_STRATEGIES.join(', ')}`);
  }
  if (f.node !== undefined) {
    if (strategy !== undefined && strategy !== 'manual')
      return usageProblem(`--node names the node itself: it goes with --strategy manual, not ${strategy}`);
    strategy = 'manual';
  } else if (strategy === 'manual') {
    return usageProblem('--strategy manual needs --node <id>');
  }
  if (f['domain-label'] !== undefined && strategy !== 'spread-domain')
    return usageProblem('--domain-label goes with --strategy spread-domain');
  const constraints: LabelConstraint[] = [];
  for (const text of f.constraint ?? []) {
    const c = parseConstraint(text);
    if (!c.ok) return c;
    constraints.push(c.value);
  }
  let group: { name: string; maxPerNode: number } | undefined;
  if (f.group !== undefined) {
    const max = f['max-per-node'] === undefined ? parsedOk(1) : parseInteger('max-per-node', f['max-per-node'], 1, 10_000);
    if (!max.ok) return max;
    group = { name: f.group, maxPerNode: max.value };
  } else if (f['max-per-node'] !== undefined) {
    return usageProblem('--max-per-node goes with --group <name>');
  }
  const terms = placementTerms(f);
  if (!terms.ok) return terms;
  let reservation: { ttlMs: number } | undefined;
  if (f.reserve !== undefined) {
    const seconds = parseInteger('reserve', f.reserve, 1, MAX_RESERVATION_TTL_MS / 1000);
    if (!seconds.ok) return seconds;
    reservation = { ttlMs: seconds.value * 1000 };
  }
  const raw = {
    request: {
      requestId: f['request-id'] ?? newId(),
      tenantId: f.tenant,
      resources: { memoryMiB: memory.value, vcpus: vcpus.value },
      priority,
      cpu: { exclusive: f.exclusive === true, numa: f.numa ?? 'any', threadPolicy, policy: cpuPolicy },
      memory: memoryOptions.value,
      // The anti-affinity group travels with the allocation too, so the agent counts it per node (allot.group).
      metadata: group ? { 'allot.group': group.name } : {},
      reservation,
    },
    placement: {
      strategy,
      nodeId: f.node,
      domainLabel: f['domain-label'],
      constraints,
      group,
      ...terms.value,
      allowPreemption: f.preempt === true,
    },
  };
  const parsed = PlaceRequestSchema.safeParse(raw);
  if (!parsed.success) return usageProblem(formatIssues(parsed.error).map(flagNameOf).join('; '));
  return parsedOk(parsed.data);
}

/** --numa-node and --hugepages as the request's memory options (undefined when neither is given). */
function parseMemoryOptions(f: PlaceFlags): Parsed<MemoryOptions | undefined> {
  const options: MemoryOptions = {};
  if (f['numa-node'] !== undefined) {
    const node = parseInteger('numa-node', f['numa-node'], 0, 255);
    if (!node.ok) return node;
    options.numaNode = node.value;
  }
  if (f.hugepages !== undefined) {
    const m = /^\s*(2Mi|1Gi):(\d+)\s*$/.exec(f.hugepages);
    if (m === null) return usageProblem(`--hugepages: "${f.hugepages}" is not <2Mi|1Gi>:<pages>`);
    const count = parseInteger('hugepages', m[2] ?? '', 1, 16_777_216);
    if (!count.ok) return count;
    options.hugepages = { pageSizeMiB: m[1] === '1Gi' ? 1024 : 2, count: count.value };
  }
  return parsedOk(Object.keys(options).length === 0 ? undefined : options);
}

/** --toleration, --max-skew with --spread-label, --affinity and --prefer-affinity as placement options. */
function placementTerms(f: PlaceFlags): Parsed<Pick<PlacementOptions, 'tolerations' | 'topologySpread' | 'affinity'>> {
  const out: Pick<PlacementOptions, 'tolerations' | 'topologySpread' | 'affinity'> = {};
  for (const text of f.toleration ?? []) {
    const t = parseToleration(text);
    if (!t.ok) return t;
    (out.tolerations ??= []).push(t.value);
  }
  if (f['max-skew'] !== undefined) {
    const skew = parseInteger('max-skew', f['max-skew'], 1, 10_000);
    if (!skew.ok) return skew;
    out.topologySpread = { topologyKey: f['spread-label'] ?? 'zone', maxSkew: skew.value };
  } else if (f['spread-label'] !== undefined) {
    return usageProblem('--spread-label goes with --max-skew <n>');
  }
  for (const [texts, mode] of [
    [f.affinity, 'required'],
    [f['prefer-affinity'], 'preferred'],
  ] as const) {
    for (const text of texts ?? []) {
      const a = parseAffinity(text, mode);
      if (!a.ok) return a;
      (out.affinity ??= []).push(a.value);
    }
  }
  return parsedOk(out);
}

const FIELD_FLAGS: Record<string, string> = {
  'request.requestId': '--request-id',
  'request.tenantId': '--tenant',
  'request.resources.memoryMiB': '--memory',
  'request.resources.vcpus': '--vcpus',
  'request.resources': '--memory/--vcpus',
  'request.priority': '--priority',
  'placement.nodeId': '--node',
  'placement.group.name': '--group',
  'placement.domainLabel': '--domain-label',
};

/** A schema issue in the words of the command line: `request.tenantId: ...` becomes `--tenant: ...`. */
function flagNameOf(issue: string): string {
  const colon = issue.indexOf(':');
  const path = issue.slice(0, colon);
  const flag = FIELD_FLAGS[path] ?? (path.startsWith('placement.constraints') ? '--constraint' : undefined);
  return flag === undefined ? issue : `${flag}${issue.slice(colon)}`;
}
