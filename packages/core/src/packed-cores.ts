import type { CoreState, CpuUsage } from './domain.ts';

/*
 * A node's per-core list held compactly. A coordinator keeps every node's last list (64 cores a host, 10,000 hosts): as
 * 640,000 small objects it was 13.5 KB a node, 130 MiB of old generation at 10,000 nodes; as one typed array of
 * columns and a table of the holders' allocation ids it is about 1 KB (docs/benchmarks.md, "Fleet"). Readers still
 * see `cpu.cores` as CoreState[]: the view's snapshots carry it as a getter that unpacks on each read (cold readers: a
 * node's detail, the preemption post-filter's few nodes); hot readers (the index on every heartbeat, the filters)
 * count from the packed form without unpacking (coreListLength, sharedCoresListed, sharedCoresPerNumaListed).
 */

const ROLES = ['shared', 'exclusive', 'reserved'] as const;
type Role = (typeof ROLES)[number];
const ROLE_CODE: Readonly<Record<Role, number>> = { shared: 0, exclusive: 1, reserved: 2 };
/** Columns, each `length` long: id, core, numa, socket, role code, holder (index in the table + 1, 0: none), utilization. */
const ID = 0;
const CORE = 1;
const NUMA = 2;
const SOCKET = 3;
const ROLE = 4;
const HOLDER = 5;
const UTILIZATION = 6;
const COLUMNS = 7;

type Columns = Uint8Array | Uint16Array | Uint32Array | Float64Array;

/** The narrowest column type holding every value exactly (Float64Array holds any safe integer). */
function columnsFor(size: number, max: number): Columns {
  if (max < 2 ** 8) return new Uint8Array(size);
  if (max < 2 ** 16) return new Uint16Array(size);
  if (max < 2 ** 32) return new Uint32Array(size);
  return new Float64Array(size);
}

/**
 * A string that shares no memory with another. A decoder may return strings as slices of one larger string (msgpackr's
 * native string extractor slices the whole message's text): a holder's id kept for the list's lifetime would keep the
 * whole message it came in (5 KB for a 64-core report) alive with it.
 */
export const ownCopy = (s: string): string => JSON.parse(JSON.stringify(s)) as string;

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** An immutable per-core list in columns. Built with `PackedCores.of`; `unpack()` gives back equal CoreState objects. */
export class PackedCores {
  readonly length: number;
  /** Cores in role `shared`, counted once when packed (the free-capacity index reads it on every heartbeat). */
  readonly sharedCount: number;
  readonly #columns: Columns;
  readonly #holders: readonly string[];

  private constructor(length: number, columns: Columns, holders: readonly string[], sharedCount: number) {
    this.length = length;
    this.#columns = columns;
    this.#holders = holders;
    this.sharedCount = sharedCount;
  }

  /**
   * Packs a list, or undefined when a core does not have the schema's shape (a number that is not a non-negative safe
   * integer, an unknown role, a holder that is not a string, another key): such a list is kept as it is.
   */
  static of(cores: readonly CoreState[]): PackedCores | undefined {
    const length = cores.length;
    const holders: string[] = [];
    const holderIndex = new Map<string, number>();
    let max = 0;
    let shared = 0;
    for (const c of cores) {
      if (!isCount(c.id) || !isCount(c.core) || !isCount(c.numa) || !isCount(c.socket) || !isCount(c.utilizationPermille)) return undefined;
      if (typeof c.role !== 'string' || !Object.hasOwn(ROLE_CODE, c.role)) return undefined;
      // Exactly the schema's keys (the five numbers and the role are checked above): unpack gives back no other.
      const holds = Object.hasOwn(c, 'allocationId');
      if (Object.keys(c).length !== (holds ? 7 : 6) || (holds && typeof c.allocationId !== 'string')) return undefined;
      if (c.allocationId !== undefined && !holderIndex.has(c.allocationId)) {
        holderIndex.set(c.allocationId, holders.length);
        holders.push(ownCopy(c.allocationId));
      }
      max = Math.max(max, c.id, c.core, c.numa, c.socket, c.utilizationPermille);
      if (c.role === 'shared') shared += 1;
    }
    const columns = columnsFor(length * COLUMNS, Math.max(max, holders.length));
    for (let i = 0; i < length; i += 1) {
      const c = cores[i] as CoreState;
      columns[ID * length + i] = c.id;
      columns[CORE * length + i] = c.core;
      columns[NUMA * length + i] = c.numa;
      columns[SOCKET * length + i] = c.socket;
      columns[ROLE * length + i] = ROLE_CODE[c.role];
      columns[HOLDER * length + i] = c.allocationId === undefined ? 0 : (holderIndex.get(c.allocationId) as number) + 1;
      columns[UTILIZATION * length + i] = c.utilizationPermille;
    }
    return new PackedCores(length, columns, holders, shared);
  }

  /** Core i's NUMA node, without unpacking. */
  numaAt(i: number): number {
    return this.#columns[NUMA * this.length + i] as number;
  }

  /** Core i's role, without unpacking. */
  roleAt(i: number): Role {
    return ROLES[this.#columns[ROLE * this.length + i] as number] as Role;
  }

  /** The list as CoreState objects (new ones on every call: a caller may keep or change them). */
  unpack(): CoreState[] {
    const n = this.length;
    const col = this.#columns;
    const out: CoreState[] = new Array<CoreState>(n);
    for (let i = 0; i < n; i += 1) {
      const holder = col[HOLDER * n + i] as number;
      const id = col[ID * n + i] as number;
      const core = col[CORE * n + i] as number;
      const numa = col[NUMA * n + i] as number;
      const socket = col[SOCKET * n + i] as number;
      const role = ROLES[col[ROLE * n + i] as number] as Role;
      const utilizationPermille = col[UTILIZATION * n + i] as number;
      out[i] =
        holder === 0
          ? { id, core, numa, socket, role, utilizationPermille }
          : { id, core, numa, socket, role, allocationId: this.#holders[holder - 1] as string, utilizationPermille };
    }
    return out;
  }
}

const PACKED = Symbol('allot.packedCores');
type WithPacked = { readonly [PACKED]?: PackedCores };

function unpackCores(this: WithPacked): CoreState[] {
  return (this[PACKED] as PackedCores).unpack();
}

/**
 * `cpu` with its per-core list held as `packed`: `cores` is an own enumerable getter (JSON.stringify, msgpack, spreads
 * and zod all read it as the list) that unpacks on every read. Keys keep their order.
 */
export function withPackedCores<C extends CpuUsage>(cpu: C, packed: PackedCores): C {
  const out: Record<string | symbol, unknown> = {};
  Object.defineProperty(out, PACKED, { value: packed });
  for (const key of Object.keys(cpu)) {
    if (key === 'cores') Object.defineProperty(out, 'cores', { get: unpackCores, enumerable: true, configurable: true });
    else out[key] = cpu[key as keyof C];
  }
  if (!Object.hasOwn(out, 'cores')) Object.defineProperty(out, 'cores', { get: unpackCores, enumerable: true, configurable: true });
  return out as C;
}

/** The packed list a cpu figure carries (withPackedCores), if any. */
export function packedCoresOf(cpu: CpuUsage): PackedCores | undefined {
  return (cpu as WithPacked)[PACKED];
}

/** How many cores a snapshot's list has, without unpacking a packed one. */
export function coreListLength(cpu: CpuUsage): number {
  return packedCoresOf(cpu)?.length ?? cpu.cores.length;
}

/** The list's cores in role shared, without unpacking a packed one. */
export function sharedCoresListed(cpu: CpuUsage): number {
  const packed = packedCoresOf(cpu);
  if (packed !== undefined) return packed.sharedCount;
  let n = 0;
  for (const core of cpu.cores) if (core.role === 'shared') n += 1;
  return n;
}

/** Per NUMA node (in the list's order of first appearance), the list's shared cores, without unpacking a packed one. */
export function sharedCoresPerNumaListed(cpu: CpuUsage): Map<number, number> {
  const perNode = new Map<number, number>();
  const packed = packedCoresOf(cpu);
  if (packed === undefined) {
    for (const core of cpu.cores) if (core.role === 'shared') perNode.set(core.numa, (perNode.get(core.numa) ?? 0) + 1);
    return perNode;
  }
  for (let i = 0; i < packed.length; i += 1)
    if (packed.roleAt(i) === 'shared') perNode.set(packed.numaAt(i), (perNode.get(packed.numaAt(i)) ?? 0) + 1);
  return perNode;
}
