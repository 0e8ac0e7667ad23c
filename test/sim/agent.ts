import { decode, decodeWith, encode, type AgentVerb, type AllotEvent } from '@allot/protocol';
import { err, ok, type Allocation, type Result } from '@allot/core';
import type { EndpointSpec, RequestContext } from '@allot/nats';
import { agentEndpoints } from '../../apps/agent/src/endpoints.ts';
import { eventsOfRecord } from '../../apps/agent/src/events.ts';
import { ManagerFactory, topologyFixture, type HostManager, type HostRecord } from '../../packages/managers/src/index.ts';
import { FakeProbe } from '../../packages/managers/src/testing/index.ts';
import { ProcessClock, type HostBoot } from './clocks.ts';
import { SimDisk, SimJournal } from './disk.ts';
import type { Faults } from './faults.ts';
import { DurableModel } from './durable-model.ts';
import { SIM_EPOCH_MS, type Scheduler } from './scheduler.ts';

const TOPOLOGY = topologyFixture({ sockets: 1, numaPerSocket: 2, coresPerNuma: 4, threadsPerCore: 1 });
export const AGENT_MEMORY_MIB = 16_384;
export const AGENT_CPU_OVERCOMMIT = 2;
/** Released allocations are retained this long (short, so the retention path runs within a simulated run). */
const RETENTION_MS = 120_000;

/** The request context an endpoint handler receives; the agent's handlers read only the request. */
const NO_CONTEXT = {} as RequestContext;

/**
 * A simulated agent process: the real HostManager (memory + CPU composite) and the real endpoint handlers
 * (apps/agent/src/endpoints.ts) over a SimJournal on a disk that survives crashes. A crash kills the incarnation
 * (its clock, its journal queue, its replies); a restart builds a new manager and restores it from the disk through
 * the managers' restore path, as the agent does with its ledger. A journal failure stops the agent, which restarts
 * from disk (the agent's onFatal path).
 */
export class SimAgent {
  readonly nodeId: string;
  readonly disk = new SimDisk();
  /** Every durable record folded in order: what a restart can know. */
  readonly model: DurableModel;
  readonly #sched: Scheduler;
  readonly #faults: () => Faults;
  #host: HostManager | undefined;
  #journal: SimJournal | undefined;
  #clock: ProcessClock | undefined;
  #endpoints = new Map<string, EndpointSpec>();
  #skewMs: number;
  /** The host's current boot: its monotonic clock survives agent restarts, not reboots (every third restart). */
  #boot: HostBoot;
  #boots = 1;
  /**
   * The reservations and preemption grace periods of this host as they were made, by allocation id (a grace period's:
   * its preemptor's): when each is due in true time (its TTL or grace after the turn that made it), the boot it was
   * made in, the wall-clock skew its expiresAt was written with, and a grace period's victims.
   */
  readonly #holds = new Map<string, { dueAt: number; bootId: string; skewMs: number; victims?: string[] }>();
  #up = false;
  #starting = false;
  #compacting = false;
  /** Grows with every start: a reply computed by an older incarnation is never sent. */
  incarnation = 0;
  restarts = 0;
  /**
   * Where the events of durable records go (ALLOT_EVENTS), as the agent publishes them (apps/agent/src/events.ts): from
   * an in-memory outbox after a network delay, so a crash before the publish loses them (the sweep's job then).
   */
  onEvent: ((event: AllotEvent, msgId: string) => void) | undefined;
  /** Called with each record once it is durable and folded into the model (cross-agent invariants). */
  onRecord: ((record: HostRecord) => void) | undefined;

  constructor(sched: Scheduler, nodeId: string, faults: () => Faults) {
    this.#sched = sched;
    this.nodeId = nodeId;
    this.#faults = faults;
    this.#skewMs = sched.int(-2_000, 2_000);
    this.#boot = { id: `${nodeId}-boot-1`, at: sched.now };
    this.model = new DurableModel(
      nodeId,
      { memoryMiB: AGENT_MEMORY_MIB, vcpus: TOPOLOGY.cores.length * AGENT_CPU_OVERCOMMIT },
      (message) => sched.fail(message),
      RETENTION_MS,
    );
  }

  get up(): boolean {
    return this.#up;
  }

  get host(): HostManager | undefined {
    return this.#up ? this.#host : undefined;
  }

  get clock(): ProcessClock | undefined {
    return this.#clock;
  }

  /** Builds a new incarnation and restores it from the disk; a refused restore is an invariant failure (a crash loop). */
  async start(): Promise<void> {
    if (this.#up || this.#starting) return;
    this.#starting = true;
    const incarnation = ++this.incarnation;
    const name = `${this.nodeId}#${incarnation}`;
    const clock = new ProcessClock(this.#sched, name, this.#skewMs, this.#boot);
    // The managers' wall clock is anchored at this start: a record's instants are true time plus this skew.
    const anchorSkewMs = this.#skewMs;
    const bootId = this.#boot.id;
    const journal = new SimJournal({
      disk: this.disk,
      sched: this.#sched,
      faults: this.#faults,
      name,
      onFatal: () => this.#sched.after(0, `${name} exits on ledger failure`, () => this.crash('ledger failed')),
      onDurable: (record, committedAt) => {
        if (record.kind === 'reserved' && record.allocation.expiresAt !== undefined) {
          this.#holds.set(record.allocation.id, { dueAt: record.allocation.expiresAt - anchorSkewMs, bootId, skewMs: anchorSkewMs });
          this.#watchHold(record.allocation.id, incarnation);
        }
        if (record.kind === 'preempting' && record.allocation.expiresAt !== undefined) {
          const victims = record.victims.map((v) => v.allocationId);
          this.#holds.set(record.allocation.id, {
            dueAt: record.allocation.expiresAt - anchorSkewMs,
            bootId,
            skewMs: anchorSkewMs,
            victims,
          });
          this.#watchGrace(record.allocation.id, incarnation);
        }
        // A grace period ended on the disk: nothing of it is left to watch after a restart.
        const ended = record.kind === 'preempted' ? record.allocation.id : record.kind === 'expired' ? record.allocationId : undefined;
        if (ended !== undefined && this.#holds.get(ended)?.victims !== undefined) this.#holds.delete(ended);
        this.#durable(record, committedAt);
      },
    });
    // The managers see the agent's clock as production builds it: wall time anchored at start (systemClock).
    const managersClock = clock.anchored();
    const probe = new FakeProbe({ topology: TOPOLOGY, totalMemoryMiB: AGENT_MEMORY_MIB, now: () => managersClock.now() });
    const built = new ManagerFactory({ topology: TOPOLOGY, probe, clock: managersClock })
      .host(this.nodeId)
      .memory({ capacity: AGENT_MEMORY_MIB })
      .cpu({ overcommitRatio: AGENT_CPU_OVERCOMMIT })
      .journal(journal)
      .durable(() => journal.load())
      .releasedRetention(RETENTION_MS)
      .build();
    if (!built.ok) throw new Error(`${name}: cannot build the host manager: ${built.error.message}`);
    const host = built.value;
    const durable = this.disk.durableState();
    const restoringAt = this.#sched.now;
    journal.restoring = true;
    const restored = await host.restore(durable.snapshot, durable.records);
    journal.restoring = false;
    this.#starting = false;
    if (this.incarnation !== incarnation) return;
    if (!restored.ok && journal.failed) {
      // The disk failed under the restore's own records (reservations expired while down): exit and start again.
      this.#journal = journal;
      this.#clock = clock;
      this.#up = true;
      this.crash('ledger failed during restore');
      return;
    }
    if (!restored.ok) {
      this.#sched.fail(`${name} cannot restart from its disk: ${restored.error.code} ${restored.error.message}`);
      return;
    }
    this.#host = host;
    this.#journal = journal;
    this.#clock = clock;
    this.#endpoints = new Map(
      agentEndpoints({
        nodeId: this.nodeId,
        host,
        usage: () => Promise.resolve(ok({})),
        hostHealth: () => Promise.resolve(err('internal', 'not simulated')),
        refused: () => undefined,
      }).map((ep) => [ep.subject.slice(ep.subject.lastIndexOf(`${this.nodeId}.`) + this.nodeId.length + 1), ep]),
    );
    this.#up = true;
    if (incarnation === 1) {
      const usage = await host.getUsage();
      if (usage.ok) {
        const of = (type: string): number => usage.value.find((u) => u.resourceType === type)?.effectiveCapacity ?? 0;
        this.model.effective = { memoryMiB: of('memory'), vcpus: of('cpu') };
      }
    }
    this.#sched.trace(`${name} up (restored seq ${restored.value.seq}, ${restored.value.expired} expired while down)`);
    await this.#checkRestoredMatchesDisk(host, name, incarnation, restoringAt);
  }

  /**
   * Whether a reservation's expiry follows its wall-clock instant rather than its TTL: the host rebooted since it was
   * made (its monotonic deadline is of another boot) and the wall clock has stepped since. Documented: after a reboot
   * expiresAt is the only information left.
   */
  expiresOnWallClock(allocationId: string): boolean {
    const hold = this.#holds.get(allocationId);
    return hold !== undefined && hold.bootId !== this.#boot.id && hold.skewMs !== this.#skewMs;
  }

  /**
   * Checks, 1 ms after a reservation's TTL has run out in true time, that this incarnation no longer holds it as
   * reserved (its expiry timer fired): a hold kept longer by a wall-clock step, within a process or across a restart,
   * fails the run there rather than at the settle check.
   */
  #watchHold(allocationId: string, incarnation: number): void {
    const dueAt = this.holdDueAt(allocationId);
    if (dueAt === undefined || this.expiresOnWallClock(allocationId)) return;
    this.#sched.after(Math.max(0, dueAt - this.#sched.now) + 1, `${this.nodeId} checks reservation ${allocationId} expired`, () => {
      const host = this.#host;
      if (host === undefined || !this.#up || this.incarnation !== incarnation) return;
      void host.getAllocations({ status: 'reserved' }).then((held) => {
        if (!held.ok || this.incarnation !== incarnation || this.expiresOnWallClock(allocationId)) return;
        if (held.value.some((a) => a.id === allocationId))
          this.#sched.fail(
            `${this.nodeId}#${incarnation} still holds reservation ${allocationId} past its TTL (due ${dueAt - SIM_EPOCH_MS})`,
          );
      });
    });
  }

  /**
   * Checks, 1 ms after a grace period of true time has run out, that this incarnation has ended it: none of its victims
   * is still `releasing` (they are released, or active again when the preemption could not finish).
   */
  #watchGrace(preemptorId: string, incarnation: number): void {
    const grace = this.#holds.get(preemptorId);
    if (grace?.victims === undefined || this.expiresOnWallClock(preemptorId)) return;
    const { dueAt, victims } = grace;
    this.#sched.after(Math.max(0, dueAt - this.#sched.now) + 1, `${this.nodeId} checks grace period of ${preemptorId} ended`, () => {
      const host = this.#host;
      if (host === undefined || !this.#up || this.incarnation !== incarnation) return;
      void host.getAllocations({ status: 'releasing' }).then((releasing) => {
        if (!releasing.ok || this.incarnation !== incarnation) return;
        const waiting = releasing.value.filter((a) => victims.includes(a.id)).map((a) => a.id);
        if (waiting.length > 0)
          this.#sched.fail(
            `${this.nodeId}#${incarnation} still holds ${waiting.join(', ')} releasing for ${preemptorId} past its grace period (due ${dueAt - SIM_EPOCH_MS})`,
          );
      });
    });
  }

  /** True time a reservation of this host is due (its TTL after the turn that made it), if known. */
  holdDueAt(allocationId: string): number | undefined {
    return this.#holds.get(allocationId)?.dueAt;
  }

  /** Restore must rebuild exactly what the disk says is live (a restart that drops or invents one is a lost ack or a ghost). */
  async #checkRestoredMatchesDisk(host: HostManager, name: string, incarnation: number, restoringAt: number): Promise<void> {
    // What the disk held at the restart. The listing below describes the host as of this call and is answered only
    // once the tail is durable; allocations committed meanwhile are in the model by then but not in the listing.
    const onDiskAtRestart = [...this.model.liveIds()].map((id) => ({
      id,
      status: this.model.get(id)?.status,
      memoryMiB: this.model.get(id)?.memoryMiB,
      vcpus: this.model.get(id)?.vcpus,
    }));
    const live = await host.getAllocations({ status: 'live' });
    if (!live.ok || this.incarnation !== incarnation) return;
    const inMemory = new Set(live.value.map((a) => a.id));
    // What expires expires, also across restarts: a reservation restored after its TTL ran out expires in the restore,
    // one whose TTL has not run out is restored, whatever the wall clock did while the agent was down.
    for (const { id, status } of onDiskAtRestart) {
      const dueAt = this.holdDueAt(id);
      if (status !== 'reserved' || dueAt === undefined || this.expiresOnWallClock(id)) continue;
      const held = live.value.find((a) => a.id === id)?.status === 'reserved';
      if (held && dueAt <= restoringAt)
        this.#sched.fail(`${name} restored reservation ${id} ${restoringAt - dueAt} ms after its TTL ran out, still held`);
      if (this.model.get(id)?.status === 'expired' && dueAt > this.#sched.now)
        this.#sched.fail(`${name} expired reservation ${id} in its restore, ${dueAt - this.#sched.now} ms before its TTL runs out`);
      if (held) this.#watchHold(id, incarnation);
    }
    // ... and a grace period still running on its disk ends when its grace of true time is up.
    for (const [preemptorId, grace] of this.#holds)
      if (grace.victims?.some((v) => this.model.get(v)?.status === 'releasing') === true) this.#watchGrace(preemptorId, incarnation);
    for (const { id, status } of onDiskAtRestart) {
      // A reservation that expired while the agent was down is journaled as expired during restore, and a grace period
      // whose deadline passed while it was down ends there (its victims released): not lost, their records are on the
      // way to the disk (a stalled disk holds them past this check; the settle check compares memory and disk again).
      if (!inMemory.has(id) && status !== 'reserved' && status !== 'releasing')
        this.#sched.fail(`${name} restarted without ${id}, which is live (${status}) on its disk`);
    }
    // ... at the amounts its records end on (a resize replayed, or kept by a snapshot).
    for (const a of live.value) {
      const disk = onDiskAtRestart.find((d) => d.id === a.id);
      if (disk !== undefined && (disk.memoryMiB !== a.granted.memoryMiB || disk.vcpus !== a.granted.vcpus))
        this.#sched.fail(
          `${name} restarted with ${a.id} at ${a.granted.memoryMiB} MiB/${a.granted.vcpus} vCPUs, its disk says ${disk.memoryMiB}/${disk.vcpus}`,
        );
    }
  }

  #durable(record: HostRecord, committedAt: number): void {
    this.model.apply(record, committedAt);
    this.onRecord?.(record);
    const onEvent = this.onEvent;
    if (onEvent !== undefined) {
      const incarnation = this.incarnation;
      for (const { event, msgId } of eventsOfRecord(this.nodeId, record)) {
        this.#sched.after(this.#sched.int(0, this.#faults().maxDelayMs), `${this.nodeId} publishes event ${msgId}`, () => {
          if (this.incarnation === incarnation) onEvent(event, msgId);
        });
      }
    }
    // Compact now and then, as the ledger does past its threshold.
    if (this.disk.records.length > 30 && this.#sched.chance(0.1)) {
      const host = this.#host;
      const journal = this.#journal;
      if (host === undefined || journal === undefined || this.#compacting) return;
      // One compaction at a time, as the agent's LedgerJournal.compactIfDue does.
      this.#compacting = true;
      void host.exportState().then((state) => {
        this.#compacting = false;
        if (state.ok && this.#journal === journal) journal.compact(state.value);
      });
    }
  }

  /** Kills this incarnation (nothing queued reaches the disk) and schedules its restart. */
  /** Crashed for good (a host lost for ever): it never restarts. */
  dead = false;

  crash(reason: string, forGood = false): void {
    if (forGood) this.dead = true;
    if (!this.#up && !this.#starting) return;
    this.#sched.trace(`${this.nodeId}#${this.incarnation} CRASH (${reason}); ${this.#journal?.inFlight ?? 0} records not durable are lost`);
    this.#up = false;
    this.#starting = false;
    this.incarnation++;
    this.#clock?.kill();
    this.#journal?.kill();
    this.#host = undefined;
    this.#journal = undefined;
    this.restarts++;
    if (this.restarts % 3 === 0) {
      // The host reboots: a new boot id, monotonic time from zero (it does not survive, the disk does).
      this.#boot = { id: `${this.nodeId}-boot-${++this.#boots}`, at: this.#sched.now };
      this.#sched.trace(`${this.nodeId} host reboots (${this.#boot.id})`);
    }
    this.#sched.after(this.#sched.int(100, 5_000), `${this.nodeId} restart`, () => {
      if (!this.dead) void this.start();
    });
  }

  /** Steps this agent's wall clock (from its next incarnation on, the skew stays). */
  stepClock(deltaMs: number): void {
    this.#skewMs += deltaMs;
    this.#clock?.step(deltaMs);
  }

  /**
   * Handles one request as the agent's service does (decode and validate, the endpoint's handler, encode the reply).
   * Resolves to the encoded reply, or undefined when this incarnation died before answering (no reply is ever sent).
   */
  async handle(verb: AgentVerb, payload: Uint8Array): Promise<Uint8Array | undefined> {
    const ep = this.#endpoints.get(verb);
    const incarnation = this.incarnation;
    if (!this.#up || ep === undefined) return undefined;
    const request =
      ep.parse === undefined
        ? decode(ep.requestSchema, payload, Number.POSITIVE_INFINITY)
        : decodeWith(ep.parse, payload, Number.POSITIVE_INFINITY);
    let result: Result<unknown>;
    if (!request.ok) result = request;
    else {
      try {
        result = await ep.handler(request.value, NO_CONTEXT);
      } catch (thrown) {
        result = err('internal', `handler ${ep.name} failed: ${(thrown as Error).message}`);
      }
    }
    if (this.incarnation !== incarnation || !this.#up) return undefined;
    if (result.ok) this.#checkAcknowledgedIsDurable(verb, request.ok ? request.value : undefined, result.value);
    return encode(result);
  }

  /** Nothing acknowledged is lost: an ok reply naming an allocation is sent only once that allocation is on disk. */
  #checkAcknowledgedIsDurable(verb: AgentVerb, request: unknown, value: unknown): void {
    if (verb !== 'allocate' && verb !== 'reserve' && verb !== 'release' && verb !== 'activate' && verb !== 'preempt' && verb !== 'resize')
      return;
    const allocation = verb === 'preempt' ? (value as { allocation: Allocation }).allocation : (value as Allocation);
    const known = this.model.get(allocation.id);
    if (known === undefined) {
      this.#sched.fail(
        `${this.nodeId} answered ${verb} ok with ${allocation.id} (${allocation.requestId}, ${allocation.status}) that is not on its disk`,
      );
      return;
    }
    if (verb === 'release' && known.status !== 'released' && known.status !== 'expired')
      this.#sched.fail(`${this.nodeId} answered release ok for ${allocation.id} whose release is not on its disk (disk: ${known.status})`);
    // Records of one group commit become durable together, so a release may already follow the activation on disk.
    if (verb === 'activate' && known.status === 'reserved')
      this.#sched.fail(`${this.nodeId} answered activate ok for ${allocation.id} whose activation is not on its disk`);
    // A resize is on disk under its own request id (a later resize may already have changed the amounts again).
    const resizeId = (request as { requestId?: string }).requestId ?? '';
    if (verb === 'resize' && !this.model.hasResize(resizeId))
      this.#sched.fail(
        `${this.nodeId} answered resize ${resizeId} ok (${allocation.id} at ${allocation.granted.memoryMiB} MiB/${allocation.granted.vcpus} vCPUs) before its record is on disk`,
      );
  }
}

export type { Allocation };
