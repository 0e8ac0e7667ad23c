import { Actor, Supervisor } from '@allot/actor';
import {
  AgentResizeRequestSchema,
  MAX_PREEMPTION_VICTIMS,
  NodeIdSchema,
  err,
  ok,
  priorityUsage,
  toAllotError,
  worstHealth,
  zodToAllotError,
  type AgentResizeRequest,
  type AllotError,
  type Allocation,
  type AllocationFilter,
  type AllocationRequest,
  type AllocationRequestInput,
  type AllocationStatus,
  type Availability,
  type ConfigProblem,
  type Health,
  type HealthThresholds,
  type PriorityUsage,
  type LimitsByType,
  type LimitsUpdate,
  type ReleaseTarget,
  type ResourceManager,
  type ResourceType,
  type ResourceUsage,
  type Result,
  type TenantUsage,
} from '@allot/core';
import { invalidConfig } from '../builder-result.ts';
import { systemClock, type Clock } from '../clock.ts';
import { parseRelease, parseRequest } from './fast-parse.ts';
import { HostState, type FenceAnswer, type Preemption, type ReleaseRequest } from './host-state.ts';
import { ManagerCore, type Turn } from './manager-core.ts';
import { MetricsRecorder, type Operation } from './metrics.ts';
import {
  MemoryJournal,
  type DurableState,
  type HostRecord,
  type HostStateSnapshot,
  type Journal,
  type ReplayableJournal,
} from './records.ts';
import type { ResourceSlice, SliceChange } from './slice.ts';

export interface HostManagerOptions {
  /** Prefix of allocation ids (`<nodeId>:<counter>`). */
  readonly nodeId: string;
  /** One per resource type (ManagerFactory builds them from config). */
  readonly slices: readonly ResourceSlice[];
  /** Where changes go; a MemoryJournal when omitted. */
  readonly journal?: Journal;
  /** Where a restart reads durable state from; the journal itself when it can replay. */
  readonly durable?: () => Promise<DurableState>;
  readonly clock?: Clock;
  readonly releasedRetentionMs?: number;
}

/** Health stays Degraded this long after a crash. */
const CRASH_WINDOW_MS = 300_000;

/** What the agent publishes: one consistent view taken inside one turn. */
export interface HostView {
  readonly seq: number;
  readonly cordoned: boolean;
  readonly cordonReason: string;
  readonly usage: ResourceUsage[];
  readonly tenants: Record<string, TenantUsage>;
  readonly groups: Record<string, number>;
  readonly allocationCount: number;
  readonly reservationCount: number;
  /** What the preemptible allocations hold per priority level (the usage snapshot's `priorities`). */
  readonly priorities: PriorityUsage[];
}

function isReplayable(journal: Journal): journal is ReplayableJournal {
  return typeof (journal as Partial<ReplayableJournal>).load === 'function';
}

/** The option of the calls that commit for a coordinator's drive of a request id. */
export interface FenceOption {
  readonly fence?: number | undefined;
}

/** What `pageAllocations` filters on (the agent's `allocations` verb). */
export interface AllocationPageQuery {
  readonly status?: AllocationStatus | 'live';
  readonly tenantId?: string;
  readonly requestId?: string;
  readonly limit: number;
  readonly after?: number;
}

export interface AllocationPage {
  readonly allocations: Allocation[];
  readonly truncated: boolean;
  readonly next?: number;
}

const REQUEST_ID = /^[A-Za-z0-9_:=-]{1,128}$/;

/** Encoded size at which a page of allocations is cut: half of NATS's default 1 MiB payload limit. */
const PAGE_BUDGET_BYTES = 512 * 1024;

/**
 * The bytes a plain value takes as msgpack, as the wire's codec writes it (objects as maps with a 3-byte header, each
 * integer in its smallest form, other numbers as float64), counted here because this domain package does not import
 * the wire (@allot/protocol). apps/agent's paging test checks pages against the codec itself.
 */
function msgpackSize(value: unknown): number {
  switch (typeof value) {
    case 'boolean':
      return 1;
    case 'undefined':
      return 3;
    case 'string': {
      const n = Buffer.byteLength(value);
      return n + (n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5);
    }
    case 'number':
      if (!Number.isInteger(value)) return 9;
      if (value >= 0) return value < 128 ? 1 : value < 256 ? 2 : value < 65536 ? 3 : value < 2 ** 32 ? 5 : 9;
      return value >= -32 ? 1 : value >= -128 ? 2 : value >= -32768 ? 3 : value >= -(2 ** 31) ? 5 : 9;
    case 'object': {
      if (value === null) return 1;
      if (Array.isArray(value)) {
        let n = value.length < 16 ? 1 : value.length < 65536 ? 3 : 5;
        for (const v of value) n += msgpackSize(v);
        return n;
      }
      let n = 0;
      let keys = 0;
      for (const [k, v] of Object.entries(value)) {
        keys += 1;
        n += msgpackSize(k) + msgpackSize(v);
      }
      return n + (keys < 65536 ? 3 : 5);
    }
    default:
      return 9;
  }
}

function checkFence(fence: unknown): Result<number | undefined> {
  if (fence === undefined || (typeof fence === 'number' && Number.isSafeInteger(fence) && fence >= 1)) return ok(fence);
  return err('invalid_request', 'fence: a whole number >= 1', { field: 'fence' });
}

/** The counter of an allocation id `<nodeId>:<counter>` (ids of other shapes sort first). */
function counterOf(id: string, prefix: string): number {
  return id.startsWith(prefix) ? Number(id.slice(prefix.length)) || 0 : 0;
}

function failure<T>(thrown: unknown): Result<T> {
  return { ok: false, error: toAllotError(thrown) };
}

/**
 * The host's resource manager: one actor over a HostState with one slice per resource type (memory, CPU, counted
 * types), a VM's memory + CPU (+ extra types) all or nothing. The state drives every slice inside one synchronous
 * turn: take memory, take CPU, and if CPU refuses, free the memory in the same turn, so no observer ever sees the
 * half state. It owns allocation records, request ids, reservations, cordon and `seq`; all reads and writes go
 * through its mailbox. Build it with ManagerFactory (host-detected defaults, registered resource types).
 */
export class HostManager implements ResourceManager {
  /** The metrics' `resource` attribute. */
  readonly name = 'composite';
  readonly nodeId: string;
  readonly #slices: readonly ResourceSlice[];
  readonly #clock: Clock;
  readonly journal: Journal;
  readonly #durable: (() => Promise<DurableState>) | undefined;
  readonly #retentionMs: number | undefined;
  readonly #supervisor: Supervisor<Turn, unknown>;
  readonly #actor: Actor<Turn, unknown>;
  readonly #metrics: MetricsRecorder;
  readonly #listeners = new Set<(seq: number) => void>();
  readonly #failureListeners = new Set<(error: AllotError) => void>();
  #core: ManagerCore;
  #stopped = false;

  /** Validates the node id and that each resource type has one slice; every problem at once. */
  static create(options: HostManagerOptions): Result<HostManager> {
    const problems: ConfigProblem[] = [];
    const node = NodeIdSchema.safeParse(options.nodeId);
    if (!node.success) problems.push({ path: 'nodeId', message: node.error.issues[0]?.message ?? 'invalid' });
    const seen = new Set<ResourceType>();
    for (const slice of options.slices) {
      if (seen.has(slice.type)) problems.push({ path: `managers.${slice.type}`, message: 'one manager per resource type' });
      seen.add(slice.type);
    }
    return problems.length > 0 ? invalidConfig(problems) : ok(new HostManager(options));
  }

  private constructor(options: HostManagerOptions) {
    this.nodeId = options.nodeId;
    this.#slices = [...options.slices];
    this.#clock = options.clock ?? systemClock;
    this.journal = options.journal ?? new MemoryJournal();
    const journal = this.journal;
    this.#durable = options.durable ?? (isReplayable(journal) ? () => journal.load() : undefined);
    this.#retentionMs = options.releasedRetentionMs;
    this.#metrics = new MetricsRecorder(this.name);
    this.#core = this.#newCore();
    this.#supervisor = new Supervisor<Turn, unknown>({
      recover: () => this.#recover(),
      degradedWindowMs: CRASH_WINDOW_MS,
      now: () => this.#clock.now(),
    });
    this.#actor = new Actor<Turn, unknown>(this.#core, {
      name: this.name,
      supervisor: this.#supervisor,
      // The supervisor gave up: tell the owner (the agent exits so that a restart recovers from disk).
      onFailed: (error) => {
        for (const listener of this.#failureListeners) listener(error);
      },
    });
  }

  get resourceTypes(): ResourceType[] {
    return this.#slices.map((s) => s.type);
  }

  #newCore(): ManagerCore {
    const state = new HostState({
      nodeId: this.nodeId,
      now: () => this.#clock.now(),
      monotonic: () => this.#clock.monotonic(),
      bootId: this.#clock.bootId,
      releasedRetentionMs: this.#retentionMs,
    });
    for (const slice of this.#slices) state.slices.set(slice.type, slice);
    return new ManagerCore({
      state,
      journal: this.journal,
      clock: this.#clock,
      post: (turn) => this.#actor.tell(turn),
      changed: (seq) => this.#emit(seq),
    });
  }

  /** The supervisor's recover(): a fresh core with empty pools, rebuilt from durable state. */
  async #recover(): Promise<ManagerCore> {
    this.#core.retire();
    if (this.#durable === undefined) throw new Error(`${this.name} has no durable state to recover from`);
    // Records still in flight would be missing from a load made now, while their replies still say ok: wait until
    // each is durable (then loaded) or failed (then its reply says internal, and the journal's failure is fatal).
    await this.#core.settled();
    const durable = await this.#durable();
    for (const slice of this.#slices) slice.reset();
    const core = this.#newCore();
    const restored = core.state.restore(durable.snapshot, durable.records);
    if (!restored.ok) throw new Error(restored.error.message);
    this.#core = core;
    if (restored.value.length > 0) await core.journal(restored.value);
    core.schedule();
    return core;
  }

  #emit(seq: number): void {
    for (const listener of this.#listeners) {
      try {
        listener(seq);
      } catch {
        // A listener's bug must not break the manager; the agent's listener logs its own failures.
      }
    }
  }

  /** Runs a turn in the mailbox and turns a rejected ask (stopped, timeout, crash) into a Result. */
  async #ask<T>(turn: (core: ManagerCore) => unknown): Promise<Result<T>> {
    try {
      // No timeout: in-process asks to a live actor always answer.
      return (await this.#actor.ask(turn as Turn)) as Result<T>;
    } catch (thrown) {
      return failure(thrown);
    }
  }

  /** A read inside a turn: the function's value as an ok Result. */
  protected read<T>(fn: (core: ManagerCore) => T): Promise<Result<T>> {
    return this.#ask<T>((core) => ok(fn(core)));
  }

  /** A read answered once everything it may have seen is durable: for answers others act on (reconciling reads). */
  #durableRead<T>(fn: (core: ManagerCore) => T): Promise<Result<T>> {
    return this.#ask<T>((core) => core.whenDurable(ok(fn(core))));
  }

  #measure(op: Operation, started: number, result: Result<unknown>): void {
    this.#metrics.record(op, result.ok ? undefined : result.error.code, performance.now() - started);
  }

  // ---------- core operations ----------

  // Each verb parses its input exactly once: here, or at the agent's endpoints, which mark what they parsed
  // (parsedAtTheEdge) and call these same methods, whose parse then takes the request as it is.
  // allocate, release and reserve are plain (not async) functions returning the ask's promise with one reaction:
  // they are the hot path, and every async frame would add a Promise and a microtask per call.

  /** `fence`: the coordinator's fencing epoch for the request id (see ManagerCore.allocate); not part of the request. */
  allocate(input: AllocationRequestInput, options: FenceOption = {}): Promise<Result<Allocation>> {
    const parsed = parseRequest(input);
    if (!parsed.ok) return Promise.resolve(this.#refuse('allocate', parsed.error));
    const fence = checkFence(options.fence);
    if (!fence.ok) return Promise.resolve(this.#refuse('allocate', fence.error));
    return this.#allocateParsed(parsed.value, fence.value);
  }

  /** allocate of a request already parsed (parseRequest) and a fence already checked (a whole number >= 1). */
  #allocateParsed(request: AllocationRequest, fence: number | undefined): Promise<Result<Allocation>> {
    const reservation = request.reservation !== undefined;
    return this.#mutate(reservation ? 'reserve' : 'allocate', (core) => core.allocate(request, reservation, fence));
  }

  reserve(input: AllocationRequestInput, options: FenceOption = {}): Promise<Result<Allocation>> {
    const parsed = parseRequest(input);
    if (!parsed.ok) return Promise.resolve(this.#refuse('reserve', parsed.error));
    if (parsed.value.reservation === undefined) return this.#reserveParsed(parsed.value, undefined);
    const fence = checkFence(options.fence);
    if (!fence.ok) return Promise.resolve(this.#refuse('reserve', fence.error));
    return this.#reserveParsed(parsed.value, fence.value);
  }

  /** reserve of a request already parsed and a fence already checked. */
  #reserveParsed(request: AllocationRequest, fence: number | undefined): Promise<Result<Allocation>> {
    if (request.reservation === undefined)
      return Promise.resolve(
        this.#refuse('reserve', {
          code: 'invalid_request',
          message: 'reservation: a reservation needs reservation.ttlMs',
          details: { field: 'reservation' },
        }),
      );
    return this.#mutate('reserve', (core) => core.allocate(request, true, fence));
  }

  /**
   * Records `fence` for the request id, durably (the highest seen is kept), then answers its allocation in any
   * status (null when none) and the recorded fence: after the reply no allocate of it at `fence` or below commits.
   */
  fence(requestId: string, fence: number): Promise<Result<FenceAnswer>> {
    if (typeof requestId !== 'string' || !REQUEST_ID.test(requestId))
      return Promise.resolve(err('invalid_request', 'requestId: 1 to 128 of A-Z a-z 0-9 _ : = -', { field: 'requestId' }));
    const checked = checkFence(fence);
    if (!checked.ok) return Promise.resolve(checked);
    return this.#ask((core) => core.fence(requestId, fence));
  }

  /**
   * Releases `victims` (allocation ids on this host) and allocates `input` in one turn and one ledger record, or
   * changes nothing (HostState.preempt says what is refused). `fence` as allocate's.
   */
  preempt(
    input: AllocationRequestInput,
    victims: readonly string[],
    options: FenceOption & { readonly graceMs?: number } = {},
  ): Promise<Result<Preemption>> {
    const parsed = parseRequest(input);
    if (!parsed.ok) return Promise.resolve(parsed);
    const fence = checkFence(options.fence);
    if (!fence.ok) return Promise.resolve(fence);
    if (
      !Array.isArray(victims) ||
      victims.length === 0 ||
      victims.length > MAX_PREEMPTION_VICTIMS ||
      !victims.every((v) => typeof v === 'string' && v.length > 0 && v.length <= 160)
    ) {
      return Promise.resolve(err('invalid_request', `victims: 1 to ${MAX_PREEMPTION_VICTIMS} allocation ids`, { field: 'victims' }));
    }
    const graceMs = options.graceMs;
    if (graceMs !== undefined && !(Number.isSafeInteger(graceMs) && graceMs >= 0 && graceMs <= 86_400_000))
      return Promise.resolve(err('invalid_request', 'graceMs: a whole number of ms from 0 to 86,400,000', { field: 'graceMs' }));
    return this.preemptParsed(parsed.value, victims, fence.value, graceMs);
  }

  /**
   * preempt of a request already parsed and victims, fence and grace already checked (the agent's endpoint). With
   * `graceMs` > 0 the victims are marked releasing and the preemptor reserved until the deadline, then both happen
   * in one 'preempted' record (HostState.preempt).
   */
  preemptParsed(
    request: AllocationRequest,
    victims: readonly string[],
    fence: number | undefined,
    graceMs?: number,
  ): Promise<Result<Preemption>> {
    return this.#ask<Preemption>((core) => core.preempt(request, victims, fence, graceMs));
  }

  release(target: ReleaseTarget & { reason?: string; fence?: number }): Promise<Result<Allocation>> {
    const parsed = parseRelease(target);
    if (!parsed.ok) return Promise.resolve(this.#refuse('release', parsed.error));
    return this.#releaseParsed(parsed.value);
  }

  /** release of a target already parsed (parseRelease). */
  #releaseParsed(release: ReleaseRequest): Promise<Result<Allocation>> {
    return this.#mutate('release', (core) => core.release(release));
  }

  /**
   * Grows or shrinks a live, active allocation's memory and vCPUs in place, all or nothing, journaled as one `resized`
   * record; answered once durable. A retry of its request id answers the durable result (resize.ts).
   */
  resize(input: AgentResizeRequest): Promise<Result<Allocation>> {
    const parsed = AgentResizeRequestSchema.safeParse(input);
    if (!parsed.success) return Promise.resolve(this.#refuse('resize', zodToAllotError(parsed.error)));
    return this.resizeParsed(parsed.data);
  }

  /** resize of a request already parsed (AgentResizeRequestSchema). */
  resizeParsed(request: AgentResizeRequest): Promise<Result<Allocation>> {
    const resize = { requestId: request.requestId, allocationId: request.allocationId, ...request.resources, fence: request.fence };
    return this.#mutate('resize', (core) => {
      void core.expireDue();
      const change = core.state.resize(resize);
      if (!change.ok) return change;
      const { allocation, record } = change.value;
      return core.commit(ok({ value: allocation, records: record === undefined ? [] : [record] }));
    });
  }

  async activateReservation(allocationId: string, requestId: string): Promise<Result<Allocation>> {
    if (typeof allocationId !== 'string' || allocationId.length === 0 || allocationId.length > 160)
      return this.#refuse('activate', {
        code: 'invalid_request',
        message: 'allocationId: a non-empty string of at most 160 characters',
        details: { field: 'allocationId' },
      });
    if (typeof requestId !== 'string' || requestId.length === 0 || requestId.length > 128)
      return this.#refuse('activate', {
        code: 'invalid_request',
        message: 'requestId: a non-empty string of at most 128 characters',
        details: { field: 'requestId' },
      });
    return this.#mutate('activate', (core) => core.activate(allocationId, requestId));
  }

  #refuse(op: Operation, error: AllotError): Result<Allocation> {
    this.#metrics.record(op, error.code, 0);
    return { ok: false, error };
  }

  #mutate(op: Operation, turn: (core: ManagerCore) => unknown): Promise<Result<Allocation>> {
    const started = performance.now();
    let asked: Promise<unknown>;
    try {
      asked = this.#actor.ask(turn as Turn);
    } catch (thrown) {
      asked = Promise.reject(thrown);
    }
    return asked.then(
      (reply) => {
        const result = reply as Result<Allocation>;
        this.#measure(op, started, result);
        return result;
      },
      (thrown: unknown) => {
        const result = failure<Allocation>(thrown);
        this.#measure(op, started, result);
        return result;
      },
    );
  }

  checkAvailability(input: AllocationRequestInput): Promise<Result<Availability>> {
    const parsed = parseRequest(input);
    return parsed.ok ? this.#checkParsed(parsed.value) : Promise.resolve(parsed);
  }

  /** checkAvailability of a request already parsed. */
  #checkParsed(request: AllocationRequest): Promise<Result<Availability>> {
    return this.read((core) => core.state.check(request));
  }

  getUsage(): Promise<Result<ResourceUsage[]>> {
    return this.read((core) => [...core.state.slices.values()].map((s) => s.usage()));
  }

  /** Usage, counts, seq and cordon in one turn: what the agent publishes to the usage stream. */
  getHostView(): Promise<Result<HostView>> {
    return this.read((core) => {
      const s = core.state;
      return {
        seq: s.seq,
        cordoned: s.cordon.cordoned,
        cordonReason: s.cordon.reason,
        usage: [...s.slices.values()].map((slice) => slice.usage()),
        // Copies: the state updates its counters in place.
        tenants: Object.fromEntries(Array.from(s.tenants, ([id, t]) => [id, { ...t }])),
        groups: Object.fromEntries(s.groups),
        allocationCount: s.live.size,
        reservationCount: s.reservationCount,
        // O(live allocations) per snapshot: statuses change in several places, a recount cannot drift.
        priorities: priorityUsage(s.live.values()),
      };
    });
  }

  /**
   * One page of live allocations in id-counter order (the order `live` keeps: ids are drawn from a growing counter),
   * those with a counter above `after`; `next` is the counter to pass as `after` when more match. At most `limit`,
   * and cut earlier once the page's encoded size reaches PAGE_BUDGET_BYTES (an allocation's metadata alone may take
   * 10 KiB). Only what is durable.
   */
  pageAllocations(query: AllocationPageQuery): Promise<Result<AllocationPage>> {
    const prefix = `${this.nodeId}:`;
    const after = query.after ?? 0;
    return this.#durableRead((core) => {
      const out: Allocation[] = [];
      let truncated = false;
      const one = query.requestId === undefined ? undefined : core.state.liveOf(query.requestId);
      const candidates: Iterable<Allocation> = query.requestId === undefined ? core.state.live.values() : one === undefined ? [] : [one];
      let bytes = 0;
      for (const a of candidates) {
        if (counterOf(a.id, prefix) <= after) continue;
        if (query.tenantId !== undefined && a.tenantId !== query.tenantId) continue;
        if (query.status !== undefined && query.status !== 'live' && a.status !== query.status) continue;
        const size = msgpackSize(a);
        if (out.length === query.limit || (out.length > 0 && bytes + size > PAGE_BUDGET_BYTES)) {
          truncated = true;
          break;
        }
        bytes += size;
        out.push(a);
      }
      const last = out[out.length - 1];
      return truncated && last !== undefined
        ? { allocations: out, truncated, next: counterOf(last.id, prefix) }
        : { allocations: out, truncated };
    });
  }

  /** Only what is durable (the coordinator reconciles against it). */
  getAllocations(filter: AllocationFilter = {}): Promise<Result<Allocation[]>> {
    const limit = filter.limit ?? 10_000;
    return this.#durableRead((core) => {
      const out: Allocation[] = [];
      for (const a of core.state.live.values()) {
        if (out.length >= limit) break;
        if (filter.tenantId !== undefined && a.tenantId !== filter.tenantId) continue;
        if (filter.requestId !== undefined && a.requestId !== filter.requestId) continue;
        if (filter.status !== undefined && filter.status !== 'live' && a.status !== filter.status) continue;
        out.push(a);
      }
      return out;
    });
  }

  // ---------- cordon, durable state ----------

  /** A cordoned host refuses allocate and reserve with `unavailable`; journaled. */
  setCordon(cordoned: boolean, reason = ''): Promise<Result<void>> {
    return this.#ask((core) => {
      const record = core.state.setCordon(cordoned, reason.slice(0, 256));
      return core.commit(ok({ value: undefined, records: record === undefined ? [] : [record] }));
    });
  }

  /** The state as a snapshot, taken inside a turn so it matches `seq` exactly (for ledger compaction). */
  exportState(): Promise<Result<HostStateSnapshot>> {
    return this.read((core) => core.state.exportState());
  }

  /**
   * Rebuilds the state from a snapshot and the records after it (the agent's file ledger). Only on a manager that
   * has not changed anything yet. Reservations that expired while the process was down expire now, journaled.
   */
  restore(snapshot: HostStateSnapshot | undefined, records: readonly HostRecord[]): Promise<Result<{ seq: number; expired: number }>> {
    return this.#ask((core) => {
      if (core.state.seq !== 0)
        return err('conflict', `${this.name} already has state (seq ${core.state.seq}); restore only into a new manager`);
      const restored = core.state.restore(snapshot, records);
      if (!restored.ok) {
        for (const slice of this.#slices) slice.reset();
        core.state.live.clear();
        return restored;
      }
      core.schedule();
      return core.commit(ok({ value: { seq: core.state.seq, expired: restored.value.length }, records: restored.value }));
    });
  }

  /**
   * Called if the manager stops by itself: its actor crashed and could not be rebuilt from durable state (the
   * supervisor gave up). Everything is refused from then on; the agent exits so that a restart recovers from disk.
   */
  onFailure(listener: (error: AllotError) => void): void {
    this.#failureListeners.add(listener);
  }

  /** Called with the new seq after every durable change (the agent publishes usage on it). Returns an unsubscribe. */
  onChange(listener: (seq: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // ---------- lifecycle ----------

  /** Managers serve from construction; start() exists for the lifecycle contract and is idempotent. */
  start(): Promise<Result<void>> {
    return Promise.resolve(this.#stopped ? err('unavailable', `${this.name} was stopped; build a new manager`) : ok(undefined));
  }

  async stop(): Promise<Result<void>> {
    this.#stopped = true;
    await this.#actor.stop();
    this.#core.retire();
    return ok(undefined);
  }

  async healthCheck(): Promise<Result<Health>> {
    if (this.#stopped || !this.#actor.isRunning) return ok({ status: 'stopped' });
    return this.read(() => worstHealth([...this.#slices.map((s) => s.health()), this.#supervisor.health()]));
  }

  // ---------- configuration ----------

  /**
   * New health thresholds for one resource type (a configuration reload): they only change what health() reports,
   * never what is admitted, so no journal record. False when no slice of that type exists.
   */
  setHealthThresholds(type: ResourceType, thresholds: HealthThresholds): boolean {
    const slice = this.#slices.find((s) => s.type === type);
    if (slice === undefined) return false;
    slice.thresholds = thresholds;
    return true;
  }

  getLimits(): Promise<Result<LimitsByType>> {
    return this.read((core) => {
      const out: LimitsByType = {};
      for (const [type, slice] of core.state.slices) out[type] = slice.config().limits;
      return out;
    });
  }

  async updateLimits(update: LimitsUpdate, options: { force?: boolean } = {}): Promise<Result<LimitsByType>> {
    if (typeof update !== 'object' || update === null)
      return err('invalid_request', 'limits update must be an object keyed by resource type', { field: 'update' });
    const force = options.force === true;
    const changes = Object.entries(update) as [ResourceType, SliceChange][];
    for (const [type, change] of changes) {
      if (typeof change !== 'object' || change === null)
        return err('invalid_request', `${type}: limits must be an object`, { field: type });
    }
    return this.#ask((core) => {
      for (const [type] of changes) {
        if (!core.state.slices.has(type)) return err('not_found', `no ${type} manager on node ${this.nodeId}`, { resourceType: type });
      }
      // All or nothing over types: check every change on the current figures first, then apply.
      const records: HostRecord[] = [];
      const applied: { type: ResourceType; before: SliceChange }[] = [];
      for (const [type, change] of changes) {
        const slice = core.state.slices.get(type) as ResourceSlice;
        const before = slice.config();
        const r = core.state.updateConfig(type, change, force);
        if (!r.ok) {
          // Undo the types already changed in this turn (their records were never journaled, so seq goes back too).
          for (const a of applied.reverse()) core.state.slices.get(a.type)?.reconfigure(a.before, true);
          core.state.seq -= records.length;
          return r.error.code === 'invalid_request'
            ? err('invalid_request', `${type}.${r.error.message}`, { ...r.error.details, resourceType: type })
            : r;
        }
        applied.push({
          type,
          before: { ...before.limits, hardLimit: before.limits.hardLimit ?? null, softLimit: before.limits.softLimit ?? null },
        });
        records.push(r.value.record);
      }
      const limits: LimitsByType = {};
      for (const [type, slice] of core.state.slices) limits[type] = slice.config().limits;
      return core.commit(ok({ value: limits, records }));
    });
  }
}
