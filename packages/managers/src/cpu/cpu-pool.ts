/*
 * The CPU pool: pure, synchronous accounting of one host's logical cores. The host manager's CPU slice wraps it; the
 * ledger makes it durable (restore() re-applies ledgered grants after a restart).
 *
 * The model.
 * - Reserved cores (config reservedCores; when empty, systemReserve cores of the lowest ids, SMT siblings together)
 *   belong to the host and are never granted.
 * - The shared pool is every other core not held exclusively. The overcommit ratio r is vCPUs per shared core, so
 *   the pool holds floor(S x r) vCPUs (capped through the hard limit, see capacity.ts). A shared grant of N vCPUs
 *   gets exactly N distinct pool cores, one home core per vCPU thread; a core's load is the number of shared vCPUs
 *   homed on it. The pool's vCPU total is what enforces overcommit; the policy only decides which cores.
 * - An exclusive grant of N vCPUs takes N idle pool cores (zero shared load, so no cpuset already handed out loses a
 *   core) out of the pool, pinned and never overcommitted. It fits only when N such cores exist and the smaller pool
 *   still covers what shared grants hold: floor((S - N) x r) >= sharedVcpusCommitted.
 * - A request may name its own core policy (request.policy) instead of the pool's; the grant records which one chose.
 * - Thread policies (exclusive only; see CpuThreadPolicySchema and whole-cores.ts): isolate and require take only
 *   wholly idle physical cores; isolate puts one vCPU on each and claims its other threads as the grant's idleSiblings,
 *   which leave the pool with it (nobody else is granted them, and they count as used); prefer is the policy's own
 *   choice with whole physical cores first. Without one, first-fit and round-robin may split siblings.
 * - Invariant: sharedVcpusCommitted <= sharedVcpusCapacity, which is the same as committed <= effectiveCapacity.
 *   Only a forced reconfigure (or restoring a ledger written under a larger config) can break it; then every take
 *   is refused until frees bring it back.
 *
 * Usage: capacity = logical cores, systemReserve = reserved cores, effectiveCapacity = min(floor((C - R) x r),
 * hardLimit), committed = sharedVcpusCommitted + the capacity the exclusive cores removed from the pool, reserved =
 * the part of committed held by reservations (shared vCPUs of reservations, plus what their exclusive cores removed).
 */
import { CPU_POLICIES, CPU_THREAD_POLICIES, err, errorOf, ok } from '@allot/core';
import type { AllotError, CpuGrant, CpuPolicy, CpuSample, CpuUsage, CoreState, Limits, NumaCores, Result } from '@allot/core';
import { capacityFigures, ratioPercent } from './capacity.ts';
import type { CapacityFigures } from './capacity.ts';
import { CoreSelector } from './core-selector.ts';
import { CoreTable, EXCLUSIVE, POOL, RESERVED } from './core-table.ts';
import { fragmentationOf } from './fragmentation.ts';
import type { Fragmentation } from './fragmentation.ts';
import { validateCpuPoolConfig, validateCpuRequest } from './pool-config.ts';
import type { CpuPoolConfig, CpuRequest } from './pool-config.ts';
import { WholeCoreSelector } from './whole-cores.ts';

/** A live allocation's hold on the pool (its cores are the grant's cpuset, mapped back through indexById). */
interface Holding {
  readonly grant: CpuGrant;
  readonly exclusive: boolean;
  reservation: boolean;
}

/** What reconfigure may change; omitted fields keep their value, hardLimit null removes the limit. */
export interface CpuPoolChange {
  overcommitRatio?: number;
  systemReserve?: number;
  reservedCores?: readonly number[];
  hardLimit?: number | null;
  policy?: CpuPolicy;
}

export class CpuPool {
  private readonly table: CoreTable;
  private readonly selector: CoreSelector;
  private readonly whole: WholeCoreSelector;
  /** The core policy the last plan() used, and whether the whole-core selector holds its choice (fields, not an object: a take allocates nothing for them). */
  private plannedPolicy: CpuPolicy = 'first-fit';
  private plannedWhole = false;
  private readonly holdings = new Map<string, Holding>();
  private readonly topology: CpuPoolConfig['topology'];
  private ratio: number;
  private percent: number;
  private hardLimit: number | undefined;
  private policy: CpuPolicy;
  private explicitReserved: readonly number[];
  private systemReserve: number;
  /** ceil(r): the per-core load first-fit packs a core up to before moving on. */
  private softCap: number;
  private cursor = 0;
  private sharedCommitted = 0;
  private reservedShared = 0;
  private reservedExclusiveCores = 0;
  private figures: CapacityFigures;
  /** Per dense NUMA node: the frozen one-node numaNodes list every grant inside that node shares. */
  private readonly oneNode: readonly (readonly number[])[];
  /** Scratch for allowedNodes(): per dense NUMA node, 1 when the request may use it. */
  private readonly nodeMask: Uint8Array;

  /** Throws on an impossible config: validate with validateCpuPoolConfig first. */
  constructor(config: CpuPoolConfig) {
    const problems = validateCpuPoolConfig(config);
    if (problems.length > 0) throw new Error(`invalid CPU pool config: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
    this.topology = config.topology;
    this.table = new CoreTable(config.topology);
    this.selector = new CoreSelector(this.table);
    this.whole = new WholeCoreSelector(this.table);
    this.oneNode = this.table.nodeIds.map((id) => Object.freeze([id]));
    this.nodeMask = new Uint8Array(this.table.nodeCount);
    this.ratio = config.overcommitRatio;
    this.percent = ratioPercent(config.overcommitRatio);
    this.softCap = Math.ceil(this.percent / 100);
    this.hardLimit = config.hardLimit;
    this.policy = config.policy;
    this.explicitReserved = [...config.reservedCores];
    this.systemReserve = config.systemReserve;
    this.table.setReserved(this.reservedIndexes(this.explicitReserved, this.systemReserve));
    this.figures = this.computeFigures();
  }

  get policyName(): CpuPolicy {
    return this.policy;
  }

  /** The grant take() would make now; changes nothing. */
  check(request: CpuRequest): Result<CpuGrant> {
    const refusal = this.plan(request);
    return refusal === undefined ? ok(this.grantOf(request)) : { ok: false, error: refusal };
  }

  /** Choose cores and commit them to allocationId. A refusal changes nothing. The grant's cpuset is frozen. */
  take(allocationId: string, request: CpuRequest, opts?: { reservation?: boolean }): Result<CpuGrant> {
    if (this.holdings.has(allocationId)) return err('conflict', `allocation ${allocationId} already holds cores`, { allocationId });
    const refusal = this.plan(request);
    if (refusal !== undefined) return { ok: false, error: refusal };
    const grant = this.grantOf(request);
    this.commit(allocationId, grant, request.exclusive, opts?.reservation === true);
    const lastTaken = this.plannedWhole ? this.whole.lastTaken : this.selector.lastTaken;
    if (this.plannedPolicy === 'round-robin' && lastTaken >= 0) this.cursor = (lastTaken + 1) % this.table.count;
    return ok(grant);
  }

  /**
   * Re-apply a ledgered grant exactly (recovery). Refuses with conflict when the grant collides with the pool as it
   * is (a core reserved, held exclusively, or, for an exclusive grant, carrying shared load). It does not refuse on
   * capacity: the allocation was acknowledged and must not be lost; if the config shrank meanwhile, usage shows
   * committed above effective capacity and takes are refused until frees bring it back.
   */
  restore(allocationId: string, grant: CpuGrant, opts?: { reservation?: boolean }): Result<void> {
    const held = this.holdings.get(allocationId);
    if (held !== undefined) {
      return sameGrant(held.grant, grant)
        ? ok(undefined)
        : err('conflict', `allocation ${allocationId} already holds other cores`, { allocationId, held: held.grant.cpuset });
    }
    const shape = this.grantShape(grant);
    if (!shape.ok) return shape;
    const exclusive = grant.mode === 'exclusive';
    const indexes = shape.value;
    if (!exclusive && grant.idleSiblings !== undefined && grant.idleSiblings.length > 0) {
      return err('invalid_request', 'grant.idleSiblings: only an exclusive grant holds idle siblings', { field: 'grant.idleSiblings' });
    }
    for (let k = 0; k < indexes.length; k += 1) {
      const i = indexes[k] ?? 0;
      const state = this.table.state[i];
      const id = this.table.ids[i];
      if (state !== POOL) {
        const role = state === RESERVED ? 'reserved' : `held exclusively by ${this.table.owner[i] ?? '?'}`;
        return err('conflict', `core ${id} of ${allocationId} is ${role}`, { allocationId, core: id });
      }
      if (exclusive && this.table.load[i] !== 0) {
        return err('conflict', `exclusive core ${id} of ${allocationId} carries shared load`, {
          allocationId,
          core: id,
          load: this.table.load[i],
        });
      }
    }
    const copy: CpuGrant = { ...grant, cpuset: [...grant.cpuset].sort((a, b) => a - b), numaNodes: [...grant.numaNodes] };
    if (grant.idleSiblings !== undefined) copy.idleSiblings = [...grant.idleSiblings].sort((a, b) => a - b);
    this.commit(allocationId, copy, exclusive, opts?.reservation === true);
    return ok(undefined);
  }

  /**
   * Grow or shrink what allocationId holds to `vcpus`, in place: a shrink returns the highest core ids of its cpuset
   * (the lowest stay, so a VM's first vCPUs keep their cores); a grow keeps every core it has and adds cores chosen by
   * the pool's policy among those it does not hold (shared: pool cores; exclusive: idle pool cores), inside its NUMA
   * node when the request requires NUMA locality (or prefers it, falling back to the whole host). A refusal changes
   * nothing and carries the figures. The new grant is frozen like take()'s.
   */
  resize(allocationId: string, vcpus: number, numa: CpuRequest['numa'], requestPolicy?: CpuPolicy): Result<CpuGrant> {
    const held = this.holdings.get(allocationId);
    if (held === undefined) return err('not_found', `allocation ${allocationId} holds no cores`, { allocationId });
    if (!Number.isSafeInteger(vcpus) || vcpus < 1) return err('invalid_request', 'vcpus: a whole number >= 1', { field: 'vcpus' });
    const old = held.grant;
    if (vcpus === old.vcpus) return ok(old);
    if (old.threadPolicy === 'isolate' || old.threadPolicy === 'require') {
      // Growing or shrinking in place would split a physical core or strand its held sibling; not modelled yet.
      return err(
        'invalid_request',
        `allocation ${allocationId} holds whole physical cores (threadPolicy ${old.threadPolicy}); resizing them in place is not supported`,
        { allocationId, threadPolicy: old.threadPolicy },
      );
    }
    const policy = requestPolicy ?? this.policy;
    const t = this.table;
    if (vcpus < old.vcpus) {
      this.moveCores(allocationId, held, old.cpuset.slice(vcpus), []);
      return ok(this.replaceGrant(allocationId, held, old, old.cpuset.slice(0, vcpus)));
    }
    const more = vcpus - old.vcpus;
    const request: CpuRequest = { vcpus: more, exclusive: held.exclusive, numa };
    const f = this.figures;
    if (held.exclusive) {
      if (more > t.idleCount)
        return this.refused(request, `${more} more exclusive cores requested, ${t.idleCount} idle cores in the shared pool`, {
          currentVcpus: old.vcpus,
        });
      const after = capacityFigures(t.count - t.reservedCount, t.poolCount - more, this.percent, this.hardLimit);
      if (after.sharedCapUnclamped < this.sharedCommitted) {
        return this.refused(
          request,
          `taking ${more} more exclusive cores would shrink the shared pool to ${Math.max(0, after.sharedCapUnclamped)} vCPUs, below the ${this.sharedCommitted} committed`,
          { currentVcpus: old.vcpus },
        );
      }
    } else {
      if (vcpus > t.poolCount)
        return this.refused(request, `${vcpus} vCPUs need ${vcpus} distinct shared cores, the shared pool has ${t.poolCount}`, {
          currentVcpus: old.vcpus,
        });
      if (this.sharedCommitted + more > f.sharedCapUnclamped) {
        return this.refused(
          request,
          `${more} more vCPUs requested, ${Math.max(0, f.sharedCapUnclamped - this.sharedCommitted)} of ${f.sharedCap} shared vCPUs free`,
          { currentVcpus: old.vcpus },
        );
      }
    }
    const heldIndexes = old.cpuset.map((id) => t.indexById[id] ?? 0);
    // Its own node first when the request wants locality and the grant sits on one node.
    const home = numa !== 'any' && old.numaNodes.length === 1 ? t.nodeIds.indexOf(old.numaNodes[0] ?? -1) : -1;
    let count = home >= 0 ? this.selector.selectMore(policy, more, held.exclusive, heldIndexes, home, this.softCap, this.cursor) : -1;
    if (count < more && numa !== 'require')
      count = this.selector.selectMore(policy, more, held.exclusive, heldIndexes, -1, this.softCap, this.cursor);
    if (count < more) {
      return this.refused(
        request,
        `node ${old.numaNodes.join(',')} has too few ${held.exclusive ? 'idle' : 'shared'} cores for ${more} more (NUMA ${numa})`,
        { currentVcpus: old.vcpus, numa },
      );
    }
    const added: number[] = [];
    for (let k = 0; k < more; k += 1) added.push(t.ids[this.selector.picked[k] ?? 0] ?? 0);
    this.moveCores(allocationId, held, [], added);
    const lastTaken = this.selector.lastTaken;
    if (policy === 'round-robin' && lastTaken >= 0) this.cursor = (lastTaken + 1) % this.table.count;
    return ok(
      this.replaceGrant(
        allocationId,
        held,
        old,
        [...old.cpuset, ...added].sort((a, b) => a - b),
      ),
    );
  }

  /**
   * Re-applies a journaled resize exactly (recovery, or putting a share back in the turn that changed it): the holding's
   * cores become grant.cpuset. Cores it keeps are not touched (one a forced reconfigure reserved since stays held until
   * freed), dropped ones are given back, and added ones must be free as they were when the resize was made (conflict
   * otherwise, nothing changed). No capacity check: the resize was admitted when it was made.
   */
  reshape(allocationId: string, grant: CpuGrant): Result<void> {
    const held = this.holdings.get(allocationId);
    if (held === undefined) return err('conflict', `allocation ${allocationId} holds no cores to resize`, { allocationId });
    // A resize of memory only (any grant, whole physical cores included) leaves the cores as they are: nothing to do.
    if (sameGrant(held.grant, grant)) return ok(undefined);
    const shape = this.grantShape(grant);
    if (!shape.ok) return shape;
    if ((grant.mode === 'exclusive') !== held.exclusive)
      return err('conflict', `allocation ${allocationId} holds ${held.grant.mode} cores, not ${grant.mode}`, { allocationId });
    if ((held.grant.idleSiblings?.length ?? 0) > 0 || (grant.idleSiblings?.length ?? 0) > 0)
      return err('conflict', `allocation ${allocationId} holds idle siblings; its cores are not resized in place`, { allocationId });
    const t = this.table;
    const before = new Set(held.grant.cpuset);
    const after = new Set(grant.cpuset);
    const added = grant.cpuset.filter((id) => !before.has(id));
    for (const id of added) {
      const i = t.indexById[id] ?? 0;
      if (t.state[i] !== POOL || (held.exclusive && t.load[i] !== 0))
        return err('conflict', `core ${id} added to ${allocationId} is not free`, { allocationId, core: id });
    }
    this.moveCores(
      allocationId,
      held,
      held.grant.cpuset.filter((id) => !after.has(id)),
      added,
    );
    const copy: CpuGrant = {
      ...grant,
      cpuset: Object.freeze([...grant.cpuset].sort((a, b) => a - b)) as number[],
      numaNodes: [...grant.numaNodes],
    };
    this.holdings.set(allocationId, { grant: copy, exclusive: held.exclusive, reservation: held.reservation });
    return ok(undefined);
  }

  /** Gives `dropped` cores of a holding back and takes `added` ones (checked free by the caller) for it. */
  private moveCores(allocationId: string, held: Holding, dropped: readonly number[], added: readonly number[]): void {
    const t = this.table;
    if (held.exclusive) {
      for (const id of dropped) {
        const i = t.indexById[id] ?? 0;
        if (held.reservation && t.state[i] === EXCLUSIVE) this.reservedExclusiveCores -= 1;
        t.release(i);
      }
      for (const id of added) t.claim(t.indexById[id] ?? 0, allocationId);
      if (held.reservation) this.reservedExclusiveCores += added.length;
      this.figures = this.computeFigures();
    } else {
      for (const id of dropped) t.addLoad(t.indexById[id] ?? 0, -1);
      for (const id of added) t.addLoad(t.indexById[id] ?? 0, 1);
      const change = added.length - dropped.length;
      this.sharedCommitted += change;
      if (held.reservation) this.reservedShared += change;
    }
  }

  /** The holding's new grant over `cpuset` (ascending): its NUMA nodes recomputed, frozen as take() freezes one. */
  private replaceGrant(allocationId: string, held: Holding, old: CpuGrant, cpuset: number[]): CpuGrant {
    const t = this.table;
    const nodes = [...new Set(cpuset.map((id) => t.nodeIds[t.nodeOf[t.indexById[id] ?? 0] ?? 0] ?? 0))].sort((a, b) => a - b);
    const grant: CpuGrant = {
      mode: old.mode,
      vcpus: cpuset.length,
      cpuset: Object.freeze(cpuset) as number[],
      numaNodes: nodes,
      numaFallback: old.numaFallback || (old.numaNodes.length === 1 && nodes.length > 1),
      policy: old.policy,
    };
    if (old.threadPolicy !== undefined) grant.threadPolicy = old.threadPolicy;
    this.holdings.set(allocationId, { grant, exclusive: held.exclusive, reservation: held.reservation });
    return grant;
  }

  /** A reservation became active: only the `reserved` figure changes. */
  markActive(allocationId: string): void {
    const held = this.holdings.get(allocationId);
    if (held === undefined || !held.reservation) return;
    held.reservation = false;
    if (held.exclusive) this.reservedExclusiveCores -= this.stillExclusive(held);
    else this.reservedShared -= held.grant.vcpus;
  }

  /** Give back what allocationId holds. Idempotent: false when it held nothing. */
  free(allocationId: string): boolean {
    const held = this.holdings.get(allocationId);
    if (held === undefined) return false;
    this.holdings.delete(allocationId);
    const t = this.table;
    const cpuset = held.grant.cpuset;
    if (held.exclusive) {
      if (held.reservation) this.reservedExclusiveCores -= this.stillExclusive(held);
      for (let k = 0; k < cpuset.length; k += 1) t.release(t.indexById[cpuset[k] ?? 0] ?? 0);
      for (const id of held.grant.idleSiblings ?? []) t.release(t.indexById[id] ?? 0);
      this.figures = this.computeFigures();
    } else {
      for (let k = 0; k < cpuset.length; k += 1) t.addLoad(t.indexById[cpuset[k] ?? 0] ?? 0, -1);
      this.sharedCommitted -= held.grant.vcpus;
      if (held.reservation) this.reservedShared -= held.grant.vcpus;
    }
    return true;
  }

  holds(allocationId: string): boolean {
    return this.holdings.has(allocationId);
  }

  /** The pool's figures and per-core state; utilization from the probe's sample when given, 0 otherwise. */
  usage(sample?: CpuSample): CpuUsage {
    const t = this.table;
    const f = this.figures;
    const committed = this.sharedCommitted + f.exclusiveCost;
    const cores: CoreState[] = [];
    let busyPermille = 0;
    for (let i = 0; i < t.count; i += 1) {
      const id = t.ids[i] ?? 0;
      const utilizationPermille = permille(sample?.perCorePermille.get(id));
      busyPermille += utilizationPermille;
      const state = t.state[i];
      const owner = t.owner[i];
      const core: CoreState = {
        id,
        core: t.physIds[t.physOf[i] ?? 0] ?? 0,
        numa: t.nodeIds[t.nodeOf[i] ?? 0] ?? 0,
        socket: t.socketOf[i] ?? 0,
        role: state === RESERVED ? 'reserved' : state === EXCLUSIVE ? 'exclusive' : 'shared',
        utilizationPermille,
      };
      if (owner !== undefined) core.allocationId = owner;
      cores.push(core);
    }
    if (sample !== undefined && sample.perCorePermille.size === 0) busyPermille = permille(sample.totalPermille) * t.count;
    const numa: NumaCores[] = t.nodeIds.map((node) => ({ node, sharedCores: 0, exclusiveCores: 0, reservedCores: 0, idleCores: 0 }));
    for (let i = 0; i < t.count; i += 1) {
      const figures = numa[t.nodeOf[i] ?? 0] as NumaCores;
      const state = t.state[i];
      if (state === RESERVED) figures.reservedCores += 1;
      else if (state === EXCLUSIVE) figures.exclusiveCores += 1;
      else figures.sharedCores += 1;
    }
    // Idle: pool cores with no shared vCPU homed, the only ones an exclusive grant takes (placement reads them per node);
    // whole idle physical cores are what the thread policies isolate and require take.
    numa.forEach((figures, node) => {
      figures.idleCores = t.nodeIdle[node] ?? 0;
      const phys = t.nodePhys[node] ?? [];
      let threads = -1;
      let whole = 0;
      for (const p of phys) {
        const n = t.physThreads[p]?.length ?? 0;
        threads = threads < 0 || threads === n ? n : 0;
        if (this.whole.isWholeIdle(p)) whole += 1;
      }
      figures.wholeIdleCores = whole;
      figures.threadsPerCore = Math.max(0, threads);
    });
    return {
      resourceType: 'cpu',
      unit: 'vCPU',
      capacity: t.count,
      systemReserve: t.reservedCount,
      effectiveCapacity: f.effective,
      committed,
      used: Math.round(busyPermille / 1000),
      reserved: Math.min(committed, this.reservedShared + this.reservedExclusiveCost()),
      allocationCount: this.holdings.size,
      sharedCores: t.poolCount,
      exclusiveCores: t.exclusiveCount,
      reservedCores: t.reservedCount,
      sharedVcpusCommitted: this.sharedCommitted,
      sharedVcpusCapacity: f.sharedCap,
      cores,
      numa,
    };
  }

  limits(): Limits {
    const limits: Limits = { capacity: this.table.count, systemReserve: this.table.reservedCount, overcommitRatio: this.ratio };
    if (this.hardLimit !== undefined) limits.hardLimit = this.hardLimit;
    return limits;
  }

  /**
   * Change ratio, reserve, hard limit or policy. Refuses with conflict (and the figures) when the new shared
   * capacity would fall below what shared grants hold, or a newly reserved core is held, unless force; forced,
   * holders keep their cores until freed, reserved cores are never granted again, and takes are refused until
   * committed is back under capacity. systemReserve alone replaces an explicit reservedCores list (unless it
   * equals its length); reservedCores [] goes back to systemReserve.
   */
  reconfigure(change: CpuPoolChange, force = false): Result<Limits> {
    const explicit =
      change.reservedCores ??
      (change.systemReserve !== undefined && change.systemReserve !== this.explicitReserved.length ? [] : this.explicitReserved);
    const next: CpuPoolConfig = {
      topology: this.topology,
      reservedCores: explicit,
      systemReserve: change.systemReserve ?? (change.reservedCores !== undefined ? 0 : this.systemReserve),
      overcommitRatio: change.overcommitRatio ?? this.ratio,
      policy: change.policy ?? this.policy,
    };
    const hardLimit = change.hardLimit === null ? undefined : (change.hardLimit ?? this.hardLimit);
    if (hardLimit !== undefined) next.hardLimit = hardLimit;
    if (explicit.length > 0 && change.systemReserve === undefined) next.systemReserve = explicit.length;
    const problems = validateCpuPoolConfig(next);
    if (problems.length > 0) {
      const first = problems[0];
      return err('invalid_request', `invalid CPU configuration: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, {
        field: first?.path,
        problems,
      });
    }

    const t = this.table;
    const reserved = this.reservedIndexes(next.reservedCores, next.systemReserve);
    const heldNowReserved: number[] = [];
    let nonReserved = 0;
    let shared = 0;
    for (let i = 0; i < t.count; i += 1) {
      if (reserved.has(i)) {
        if (t.state[i] !== RESERVED && (t.owner[i] !== undefined || (t.load[i] ?? 0) > 0)) heldNowReserved.push(t.ids[i] ?? 0);
        continue;
      }
      nonReserved += 1;
      if (t.owner[i] === undefined) shared += 1;
    }
    const percent = ratioPercent(next.overcommitRatio);
    const figures = capacityFigures(nonReserved, shared, percent, hardLimit);
    if (!force) {
      if (heldNowReserved.length > 0) {
        return err('conflict', `cores ${heldNowReserved.join(',')} are held by allocations; free them first or force`, {
          heldCores: heldNowReserved,
        });
      }
      if (figures.sharedCapUnclamped < this.sharedCommitted) {
        return err(
          'conflict',
          `the new shared capacity ${figures.sharedCap} vCPUs is below the ${this.sharedCommitted} committed; free some first or force`,
          {
            sharedVcpusCommitted: this.sharedCommitted,
            newSharedVcpusCapacity: figures.sharedCap,
            newEffectiveCapacity: figures.effective,
            committed: this.sharedCommitted + figures.exclusiveCost,
          },
        );
      }
    }

    this.ratio = next.overcommitRatio;
    this.percent = percent;
    this.softCap = Math.ceil(percent / 100);
    this.hardLimit = hardLimit;
    this.policy = next.policy;
    this.explicitReserved = [...next.reservedCores];
    this.systemReserve = next.systemReserve;
    t.setReserved(reserved);
    this.reservedExclusiveCores = 0;
    for (const held of this.holdings.values())
      if (held.exclusive && held.reservation) this.reservedExclusiveCores += this.stillExclusive(held);
    this.figures = this.computeFigures();
    return ok(this.limits());
  }

  /** See fragmentation.ts for exactly what the figures mean. */
  fragmentation(referenceVcpus: number, exclusive: boolean): Fragmentation {
    return fragmentationOf(this.table, this.figures, this.sharedCommitted, this.percent, this.hardLimit, referenceVcpus, exclusive);
  }

  // ---------- internals ----------

  /**
   * Validate, check the whole-host figures, then let the policy choose: undefined when the selector now holds the
   * choice (picked, count, numaFallback), else the refusal. No result object on the way, to keep take cheap.
   */
  private plan(request: CpuRequest): AllotError | undefined {
    const valid = validateCpuRequest(request);
    if (!valid.ok) return valid.error;
    const t = this.table;
    const n = request.vcpus;
    const f = this.figures;
    if (request.exclusive) {
      const grantable = t.count - t.reservedCount;
      if (n > grantable) {
        return errorOf('invalid_request', `an exclusive request for ${n} cores can never fit: the host grants at most ${grantable}`, {
          field: 'vcpus',
          requestedVcpus: n,
          grantableCores: grantable,
        });
      }
      if (n > t.idleCount) return this.refusal(request, `${n} exclusive cores requested, ${t.idleCount} idle cores in the shared pool`, {});
      const after = capacityFigures(t.count - t.reservedCount, t.poolCount - n, this.percent, this.hardLimit);
      if (after.sharedCapUnclamped < this.sharedCommitted) {
        const left = Math.max(0, after.sharedCapUnclamped);
        return this.refusal(
          request,
          `taking ${n} exclusive cores would shrink the shared pool to ${left} vCPUs, below the ${this.sharedCommitted} committed`,
          {
            sharedVcpusCapacityAfter: left,
          },
        );
      }
    } else {
      if (n > t.poolCount)
        return this.refusal(request, `${n} vCPUs need ${n} distinct shared cores, the shared pool has ${t.poolCount}`, {});
      if (this.sharedCommitted + n > f.sharedCapUnclamped) {
        return this.refusal(
          request,
          `${n} vCPUs requested, ${Math.max(0, f.sharedCapUnclamped - this.sharedCommitted)} of ${f.sharedCap} shared vCPUs free`,
          {},
        );
      }
    }
    const allowed = this.allowedNodes(request);
    if (allowed !== null && t.nodeCount === 1 && allowed[0] !== 1)
      return this.refusal(
        request,
        `its one NUMA node ${t.nodeIds[0] ?? 0} is not among the nodes it may use (${request.numaNodes?.join(', ')})`,
        {
          numa: 'require',
          numaNodes: request.numaNodes,
        },
      );
    this.selector.allowedNodes = allowed;
    this.whole.allowedNodes = allowed;
    try {
      return this.choose(request);
    } finally {
      this.selector.allowedNodes = null;
      this.whole.allowedNodes = null;
    }
  }

  /** The request's numaNodes as a mask over dense nodes (in a buffer reused per plan), or null when it may use any. */
  private allowedNodes(request: CpuRequest): Uint8Array | null {
    const ids = request.numaNodes;
    if (ids === undefined || request.numa !== 'require') return null;
    const t = this.table;
    const mask = this.nodeMask;
    for (let node = 0; node < t.nodeCount; node += 1) mask[node] = ids.includes(t.nodeIds[node] ?? -1) ? 1 : 0;
    return mask;
  }

  /** plan()'s choice once the whole-host figures passed: the policy's cores, or the refusal. */
  private choose(request: CpuRequest): AllotError | undefined {
    const n = request.vcpus;
    const policy = request.policy ?? this.policy;
    const thread = request.exclusive ? request.threadPolicy : undefined;
    if (thread === 'isolate' || thread === 'require') return this.planWholeCores(request, thread, policy);
    this.plannedPolicy = policy;
    this.plannedWhole = false;
    const count = this.selector.select(policy, n, request.exclusive, request.numa, this.softCap, this.cursor, thread === 'prefer');
    if (count < 0) {
      const largest = this.selector.largestNodeFree(request.exclusive);
      const what = request.exclusive ? 'idle cores' : 'shared cores';
      return this.refusal(request, `no NUMA node can hold ${n} ${what}: the largest has ${largest}`, {
        numa: 'require',
        largestNodeFree: largest,
      });
    }
    // The figures above promise n qualifying cores; a policy that found fewer is a bug, and granting the stale rest
    // of its buffer would break exclusivity, so refuse loudly instead.
    if (count !== n)
      return errorOf('internal', `policy ${policy} chose ${count} of ${n} cores`, { policy, requestedVcpus: n, chosen: count });
    return undefined;
  }

  /**
   * isolate and require: only wholly idle physical cores qualify. The whole-host idle check in plan() already
   * passed; here the choice is made first, then the shared pool must still cover its committed vCPUs without every
   * core the grant takes (isolate's idle siblings included).
   */
  private planWholeCores(request: CpuRequest, thread: 'isolate' | 'require', policy: CpuPolicy): AllotError | undefined {
    const n = request.vcpus;
    const t = this.table;
    this.plannedPolicy = policy;
    this.plannedWhole = true;
    const count = this.whole.select(policy, thread, n, request.numa, this.cursor);
    if (count < 0) {
      const idle = this.whole.wholeIdle();
      const figures = {
        threadPolicy: thread,
        wholeIdleCores: idle.host,
        largestNodeWholeIdleCores: idle.largestNode,
        threadsPerCore: this.whole.uniformThreads,
      };
      switch (this.whole.shortage) {
        case 'no_smt':
          return this.refusal(request, 'threadPolicy require needs SMT siblings; this host has one thread per core', figures);
        case 'smt_alignment':
          return this.refusal(
            request,
            `threadPolicy require takes whole physical cores: ${n} vCPUs are not a whole number of ${this.whole.uniformThreads || 'its'}-thread cores`,
            figures,
          );
        case 'numa':
          return this.refusal(
            request,
            `threadPolicy ${thread}: no NUMA node has enough wholly idle physical cores for ${n} vCPUs (the largest has ${idle.largestNode})`,
            { ...figures, numa: 'require' },
          );
        default:
          return this.refusal(
            request,
            `threadPolicy ${thread}: ${n} vCPUs need ${thread === 'isolate' ? n : `${n} threads of`} wholly idle physical cores, the host has ${idle.host}`,
            figures,
          );
      }
    }
    const taken = n + this.whole.siblingCount;
    const after = capacityFigures(t.count - t.reservedCount, t.poolCount - taken, this.percent, this.hardLimit);
    if (after.sharedCapUnclamped < this.sharedCommitted) {
      const left = Math.max(0, after.sharedCapUnclamped);
      return this.refusal(
        request,
        `threadPolicy ${thread}: taking ${taken} cores (${this.whole.siblingCount} held idle) would shrink the shared pool to ${left} vCPUs, below the ${this.sharedCommitted} committed`,
        {
          threadPolicy: thread,
          coresTaken: taken,
          sharedVcpusCapacityAfter: left,
        },
      );
    }
    return undefined;
  }

  /** refusal() as a Result. */
  private refused(request: CpuRequest, message: string, extra: Record<string, unknown>): Result<never> {
    return { ok: false, error: this.refusal(request, message, extra) };
  }

  /** insufficient_capacity with the figures that explain it. */
  private refusal(request: CpuRequest, message: string, extra: Record<string, unknown>): AllotError {
    const t = this.table;
    const f = this.figures;
    return errorOf('insufficient_capacity', message, {
      requestedVcpus: request.vcpus,
      mode: request.exclusive ? 'exclusive' : 'shared',
      freeVcpus: Math.max(0, f.sharedCapUnclamped - this.sharedCommitted),
      effectiveCapacity: f.effective,
      committed: this.sharedCommitted + f.exclusiveCost,
      sharedCores: t.poolCount,
      idleCores: t.idleCount,
      sharedVcpusCommitted: this.sharedCommitted,
      sharedVcpusCapacity: f.sharedCap,
      ...extra,
    });
  }

  /** The grant for the selector's last choice (picked is ascending by index, so by core id). */
  private grantOf(request: CpuRequest): CpuGrant {
    const t = this.table;
    const whole = this.plannedWhole;
    const picked = whole ? this.whole.picked : this.selector.picked;
    const count = request.vcpus;
    const cpuset: number[] = [];
    let firstNode = -1;
    let spans = false;
    for (let k = 0; k < count; k += 1) {
      const i = picked[k] ?? 0;
      cpuset.push(t.ids[i] ?? 0);
      const node = t.nodeOf[i] ?? 0;
      if (firstNode < 0) firstNode = node;
      else if (node !== firstNode) spans = true;
    }
    const grant: CpuGrant = {
      mode: request.exclusive ? 'exclusive' : 'shared',
      vcpus: request.vcpus,
      cpuset,
      // Frozen like the cpuset; the one-node list (the common case) is shared, not built per grant.
      numaNodes: spans ? (Object.freeze(this.nodesOf(picked, count)) as number[]) : (this.oneNode[firstNode] as number[]),
      numaFallback: (whole ? this.whole.numaFallback : this.selector.numaFallback) && spans,
      policy: this.plannedPolicy,
    };
    if (request.exclusive && request.threadPolicy !== undefined) grant.threadPolicy = request.threadPolicy;
    if (whole && this.whole.siblingCount > 0) {
      const siblings: number[] = [];
      for (let k = 0; k < this.whole.siblingCount; k += 1) siblings.push(t.ids[this.whole.siblings[k] ?? 0] ?? 0);
      grant.idleSiblings = siblings;
    }
    return grant;
  }

  /** The NUMA node ids a multi-node choice spans, ascending (dense node indexes ascend with node ids). */
  private nodesOf(picked: Int32Array, count: number): number[] {
    const t = this.table;
    const seen = new Uint8Array(t.nodeCount);
    for (let k = 0; k < count; k += 1) seen[t.nodeOf[picked[k] ?? 0] ?? 0] = 1;
    const nodes: number[] = [];
    for (let node = 0; node < t.nodeCount; node += 1) if (seen[node] === 1) nodes.push(t.nodeIds[node] ?? 0);
    return nodes;
  }

  /** Apply a grant whose cores were checked free (by plan or by restore). */
  private commit(allocationId: string, grant: CpuGrant, exclusive: boolean, reservation: boolean): void {
    const t = this.table;
    // free() finds the cores through this array, and the caller holds the same grant: freeze it so that a caller
    // sorting or editing its copy fails loudly instead of making free() release the wrong cores.
    const cpuset = Object.freeze(grant.cpuset);
    if (exclusive) {
      for (let k = 0; k < cpuset.length; k += 1) t.claim(t.indexById[cpuset[k] ?? 0] ?? 0, allocationId);
      // An isolate grant's siblings leave the pool with it: nobody else is granted them, and they count as used
      // (Nova adds them to the host's pinned CPUs the same way).
      const siblings = grant.idleSiblings === undefined ? undefined : Object.freeze(grant.idleSiblings);
      if (siblings !== undefined) for (const id of siblings) t.claim(t.indexById[id] ?? 0, allocationId);
      if (reservation) this.reservedExclusiveCores += cpuset.length + (siblings?.length ?? 0);
      this.figures = this.computeFigures();
    } else {
      for (let k = 0; k < cpuset.length; k += 1) t.addLoad(t.indexById[cpuset[k] ?? 0] ?? 0, 1);
      this.sharedCommitted += grant.vcpus;
      if (reservation) this.reservedShared += grant.vcpus;
    }
    this.holdings.set(allocationId, { grant, exclusive, reservation });
  }

  /**
   * How many of an exclusive holding's cores still count as exclusive: a forced reconfigure may have reserved some,
   * and from then on they count as reserved (reservedExclusiveCores only ever counts EXCLUSIVE cores).
   */
  private stillExclusive(held: Holding): number {
    let count = 0;
    const t = this.table;
    const cpuset = held.grant.cpuset;
    for (let k = 0; k < cpuset.length; k += 1) if (t.state[t.indexById[cpuset[k] ?? 0] ?? 0] === EXCLUSIVE) count += 1;
    for (const id of held.grant.idleSiblings ?? []) if (t.state[t.indexById[id] ?? 0] === EXCLUSIVE) count += 1;
    return count;
  }

  private computeFigures(): CapacityFigures {
    const t = this.table;
    return capacityFigures(t.count - t.reservedCount, t.poolCount, this.percent, this.hardLimit);
  }

  /** What reserved exclusive cores add to committed: the cost of all exclusives minus the cost of the active ones. */
  private reservedExclusiveCost(): number {
    if (this.reservedExclusiveCores === 0) return 0;
    const t = this.table;
    const withoutReserved = capacityFigures(
      t.count - t.reservedCount,
      t.poolCount + this.reservedExclusiveCores,
      this.percent,
      this.hardLimit,
    );
    return this.figures.exclusiveCost - withoutReserved.exclusiveCost;
  }

  private reservedIndexes(explicit: readonly number[], systemReserve: number): Set<number> {
    if (explicit.length === 0) return this.table.lowestReserved(systemReserve);
    return new Set(explicit.map((id) => this.table.indexById[id] ?? -1).filter((i) => i >= 0));
  }

  /** A restored grant's own shape, before any collision check: ids on this host, distinct, as many as vCPUs. */
  private grantShape(grant: CpuGrant): Result<Int32Array> {
    if (grant === null || typeof grant !== 'object' || (grant.mode !== 'shared' && grant.mode !== 'exclusive')) {
      return err('invalid_request', 'grant.mode must be shared or exclusive', { field: 'grant.mode' });
    }
    if (!Array.isArray(grant.cpuset) || !Number.isInteger(grant.vcpus) || grant.vcpus < 1 || grant.cpuset.length !== grant.vcpus) {
      return err('invalid_request', 'grant.cpuset must list one core per vCPU', { field: 'grant.cpuset', vcpus: grant.vcpus });
    }
    if (
      !Array.isArray(grant.numaNodes) ||
      typeof grant.numaFallback !== 'boolean' ||
      !(CPU_POLICIES as readonly unknown[]).includes(grant.policy)
    ) {
      return err('invalid_request', 'grant.numaNodes, numaFallback and policy must be as take() wrote them', { field: 'grant' });
    }
    const siblings = grant.idleSiblings ?? [];
    if (
      !Array.isArray(siblings) ||
      (grant.threadPolicy !== undefined && !(CPU_THREAD_POLICIES as readonly unknown[]).includes(grant.threadPolicy))
    ) {
      return err('invalid_request', 'grant.threadPolicy and idleSiblings must be as take() wrote them', { field: 'grant' });
    }
    // The cpuset's cores, then the idle siblings: all on this host and all distinct.
    const all = siblings.length === 0 ? grant.cpuset : [...grant.cpuset, ...siblings];
    const indexes = new Int32Array(all.length);
    const seen = new Set<number>();
    for (let k = 0; k < all.length; k += 1) {
      const id = all[k];
      const i = Number.isInteger(id) ? (this.table.indexById[id ?? -1] ?? -1) : -1;
      if (i < 0)
        return err('invalid_request', `grant.cpuset names core ${String(id)}, which is not on this host`, {
          field: 'grant.cpuset',
          core: id,
        });
      if (seen.has(i)) return err('invalid_request', `grant.cpuset names core ${String(id)} twice`, { field: 'grant.cpuset', core: id });
      seen.add(i);
      indexes[k] = i;
    }
    return ok(indexes);
  }
}

function sameGrant(a: CpuGrant, b: CpuGrant): boolean {
  if (a.mode !== b.mode || a.vcpus !== b.vcpus || a.cpuset.length !== b.cpuset.length) return false;
  const sorted = [...b.cpuset].sort((x, y) => x - y);
  const siblingsA = a.idleSiblings ?? [];
  const siblingsB = [...(b.idleSiblings ?? [])].sort((x, y) => x - y);
  return (
    a.cpuset.every((id, k) => id === sorted[k]) && siblingsA.length === siblingsB.length && siblingsA.every((id, k) => id === siblingsB[k])
  );
}

/** A probe figure as an integer 0..1000; anything else (missing, NaN) is 0. */
function permille(value: number | undefined): number {
  if (value === undefined || !Number.isFinite(value)) return 0;
  return Math.min(1000, Math.max(0, Math.round(value)));
}
