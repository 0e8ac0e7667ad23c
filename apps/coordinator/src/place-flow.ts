import { err, errorOf, ok, type Allocation, type AllotError, type Result } from '@allot/core';
import type { ClusterCheckReply, ClusterReleaseRequest, PlaceReply, PlaceRequest } from '@allot/protocol';
import {
  decide,
  preemptionTargets,
  rankPreemptionPlans,
  unavailableMessage,
  type PlacementContext,
  type PlacementDecision,
  type PreemptionPlan,
} from '@allot/placement';
import { RateLimiter } from '@allot/quota';
import type { Logger } from 'pino';
import { classifyFailure, isNoResponders, type AgentCaller } from './agents.ts';
import { allAllocations } from './allocation-pages.ts';
import type { PlaceConfig } from './config.ts';
import type { IntentStore, StoredIntent } from './intents/intent-store.ts';
import { settlePending } from './intents/pending-placement.ts';
import { releaseHeldDestination, releaseSourceOnNode, type MoveDestination } from './moves/move.ts';
import { requestHash, type PlacementIntent, type ReleaseCause } from './intents.ts';
import type { QuotaService } from './quotas.ts';
import type { CoordinatorClock } from './store/clock.ts';
import type { ClusterView } from './view.ts';

/** What the place flow needs from the rest of the coordinator. */
export interface PlaceFlowDeps {
  readonly coordinatorId: string;
  readonly view: ClusterView;
  readonly store: IntentStore;
  readonly quotas: QuotaService;
  readonly agents: AgentCaller;
  readonly config: PlaceConfig;
  readonly logger: Logger;
  readonly clock: CoordinatorClock;
  readonly random: () => number;
}

type Preempted = PlaceReply['preempted'];

/** A lost compare-and-set or a higher fence: someone else drives this request; re-read the intent and follow it. */
type Raced = 'raced';

/** Reason counted for a node whose agent refused although the view said it fits (the view was stale). */
const AGENT_REFUSED = 'refused by its agent';
const PER_NODE_QUOTA = 'tenant quota: max VMs per node';

/** The agent's answer to an allocate whose fence is not above the one it recorded: a newer drive exists. */
function isFenced(error: AllotError): boolean {
  return error.code === 'conflict' && error.details?.['reason'] === 'fenced';
}

/**
 * A refusal that proves the agent journaled this drive's fence before answering (the refusals of its state: no room,
 * cordoned): after it, no allocate of this request at that fence or below commits there. Any other refusal (a host
 * manager that has stopped, no responders) says only that this copy was not taken.
 */
function provesFence(error: AllotError): boolean {
  return error.code === 'insufficient_capacity' || (error.code === 'unavailable' && error.details?.['cordoned'] === true);
}

/**
 * A preempt refusal after which the preemption may move to another node: one the agent answered from its state, having
 * journaled the fence first (no room, a victim gone, changed, already being preempted, or now too important;
 * cordoned). After it no preempt or allocate of this request at that fence or below commits there.
 */
function preemptRefusalMovesOn(error: AllotError): boolean {
  if (provesFence(error)) return true;
  const reason = error.details?.['reason'];
  return (error.code === 'conflict' || error.code === 'not_found') && typeof reason === 'string' && reason.startsWith('victim_');
}

/** A move refused by the tenant's maxVmsPerNode on that node: the next candidate may still take it. */
export function isPerNodeQuota(error: AllotError): boolean {
  return error.code === 'quota_exceeded' && error.details?.['limit'] === 'maxVmsPerNode';
}

/** Nodes asked for this intent so far, the current one included (PlaceReply.attempts). */
export function nodesAsked(intent: PlacementIntent): number {
  return intent.refusedBy.length + 1;
}

/**
 * Place, check and release at cluster scope: orchestration only. Decisions come from @allot/placement; commits are the
 * agents'; the intent's state changes are IntentStore's (see README.md, "The place protocol").
 */
export class PlaceFlow {
  readonly #d: PlaceFlowDeps;
  /** Rate limits per coordinator: with N coordinators a tenant is admitted up to N x its rate (see README.md). */
  readonly #limiter = new RateLimiter();
  #roundRobinCursor: string | undefined;
  /** Deferred `placed` writes in flight on this coordinator, by request id (#placed). */
  readonly #recording = new Map<string, Promise<void>>();

  constructor(deps: PlaceFlowDeps) {
    this.#d = deps;
  }

  /**
   * Dry run: where it would go and why not elsewhere; changes nothing. When nothing fits and the request allows
   * preemption, the post-filter runs as a place would run it (the best few nodes' allocations fetched, read only) and
   * the best plan is answered as `preemption` (kube-scheduler's nominated node), with nothing evicted.
   */
  async check(req: PlaceRequest): Promise<Result<ClusterCheckReply>> {
    const decision = this.#decide(req, new Set());
    if (!decision.ok) return decision;
    const d = decision.value;
    const reply: ClusterCheckReply = { fits: d.candidates.length > 0, candidates: d.candidates, rejected: d.rejected, message: d.message };
    if (reply.fits || !req.placement.allowPreemption) return ok(reply);
    const [plan] = await this.#planPreemption(req, new Set());
    if (plan === undefined) return ok(reply);
    const highest = Math.max(...plan.victims.map((v) => v.priority));
    const count = `${plan.victims.length} allocation${plan.victims.length === 1 ? '' : 's'}`;
    // A check is free: another tenant's VMs are counted in the message, never named (kube shows the nominated node).
    const victims = plan.victims
      .filter((v) => v.tenantId === req.request.tenantId)
      .map((v) => ({ allocationId: v.id, requestId: v.requestId, priority: v.priority }));
    return ok({
      ...reply,
      message: `${d.message} It would fit on ${plan.nodeId} by preempting ${count} of priority ${highest} or lower.`,
      preemption: { nodeId: plan.nodeId, victims },
    });
  }

  /** `move`: this place is a move's destination (see MoveDestination); its rate is not the tenant's place rate. */
  async place(req: PlaceRequest, move?: MoveDestination): Promise<Result<PlaceReply>> {
    const requestId = req.request.requestId;
    const hash = requestHash(req);
    // Create first: a tenant without a quota has no rate limit to apply before knowing whether the id is new, so the
    // intent is created straight away (create-if-absent); losing the create means the id exists: follow it below.
    // With nothing fitting (or preemption to plan) the existing intent must decide first, so that path reads first.
    if (this.#d.quotas.quotaOf(req.request.tenantId) === undefined) {
      const decision = this.#decide(req, avoided(move));
      if (decision.ok && decision.value.candidates.length > 0) {
        const started = await this.#begin(req, hash, null, decision.value, null, move);
        if (started !== 'raced') return started;
      }
    }
    for (let round = 0; round < 4; round++) {
      const read = await this.#d.store.get(requestId);
      if (!read.ok) return read;
      const existing = read.value;
      let outcome: Result<PlaceReply> | Raced;
      if (existing !== null) {
        const intent = existing.value;
        if (intent.hash !== hash)
          return err('conflict', `request ${requestId} was used for a different place request`, { requestId, field: 'request.requestId' });
        if (intent.state === 'placed' && intent.reply !== undefined) return ok(intent.reply);
        // A batch member not placed yet is its batch's to settle: a place driving it could answer placed what the
        // batch then rolls back.
        if (intent.batch !== undefined)
          return err('conflict', `request ${requestId} is member ${intent.batch.index} of batch ${intent.batch.batchId}; retry the batch`, {
            requestId,
            batchId: intent.batch.batchId,
            state: intent.state,
          });
        if (intent.state === 'released')
          return err('conflict', `placement ${requestId} was placed and then released; use a new request id`, {
            requestId,
            state: 'released',
          });
        // pending: an allocate may already have reached its node: drive that node again (a higher fence), never another.
        // failed: nothing was placed, and no earlier allocate can commit any more: start again, taking the intent over.
        outcome = intent.state === 'pending' ? await this.#follow(req, existing) : await this.#start(req, hash, existing, move);
      } else {
        const quota = this.#d.quotas.quotaOf(req.request.tenantId);
        if (quota !== undefined && move === undefined) {
          const admitted = this.#limiter.admit(quota, 'place', this.#d.clock.monotonic());
          if (!admitted.ok) return admitted;
        }
        outcome = await this.#start(req, hash, null, move);
      }
      if (outcome !== 'raced') return outcome;
    }
    return err('unavailable', `placement intent ${requestId} keeps changing under this coordinator; retry`, { requestId });
  }

  /** First decision, then the intent (created, or a failed one taken over) and the drive. */
  async #start(
    req: PlaceRequest,
    hash: string,
    failed: StoredIntent | null,
    move: MoveDestination | undefined,
  ): Promise<Result<PlaceReply> | Raced> {
    const decision = this.#decide(req, avoided(move));
    if (!decision.ok) return decision;
    if (decision.value.candidates.length > 0) return this.#begin(req, hash, failed, decision.value, null, move);
    if (!req.placement.allowPreemption || move !== undefined) return this.#nothingFits(decision.value, {});
    const [plan] = await this.#planPreemption(req, new Set());
    if (plan === undefined)
      return this.#nothingFits(decision.value, {}, 'no preemption of allocations at least 10 priority points lower makes room on any node');
    return this.#begin(req, hash, failed, { ...decision.value, candidates: [plan.nodeId] }, plan);
  }

  /**
   * Writes the intent pending on the first candidate the tenant's quota admits (create, or take over a failed one):
   * the quota is checked against the usage record in the same batch. Then evicts (preemption) and drives.
   */
  async #begin(
    req: PlaceRequest,
    hash: string,
    failed: StoredIntent | null,
    decision: PlacementDecision,
    plan: PreemptionPlan | null,
    move?: MoveDestination,
  ): Promise<Result<PlaceReply> | Raced> {
    const { requestId, tenantId, resources } = req.request;
    // Every candidate over the tenant's per-node VM limit (checked exactly in the write): the quota's answer.
    let perNodeRefusal: Result<never> | undefined;
    let current: StoredIntent | undefined;
    let rest: string[] = [];
    for (const [i, nodeId] of decision.candidates.entries()) {
      const written =
        failed === null
          ? await this.#d.store.create({
              requestId,
              tenantId,
              hash,
              nodeId,
              memoryMiB: resources.memoryMiB,
              vcpus: resources.vcpus,
              ...(req.request.memory?.hugepages === undefined ? {} : { hugepages: req.request.memory.hugepages }),
              ...(move === undefined
                ? { asked: req }
                : { movesFrom: move.movesFrom, ...(move.asked === undefined ? {} : { asked: move.asked }) }),
            })
          : await this.#d.store.takeOver(failed, nodeId);
      if (written.ok) {
        current = written.value;
        rest = decision.candidates.slice(i + 1);
        break;
      }
      if (written.error.code === 'conflict') return 'raced';
      if (!isPerNodeQuota(written.error)) return written;
      perNodeRefusal = written;
    }
    if (current === undefined) return perNodeRefusal ?? this.#nothingFits(decision, {});
    if (plan !== null) return this.#preempt(req, current, plan);
    return this.#drive(req, current, rest, [], true);
  }

  /** Follows a pending intent: the same node, driven again at a higher fence (finding 6: nothing here writes failed). */
  async #follow(req: PlaceRequest, pending: StoredIntent): Promise<Result<PlaceReply> | Raced> {
    const driven = await this.#d.store.drive(pending);
    if (!driven.ok) return driven.error.code === 'conflict' ? 'raced' : driven;
    return this.#drive(req, driven.value, [], [], false);
  }

  /**
   * Asks the intent's node with `fence: attempt`, and on a definitive refusal moves the intent (CAS, attempt+1) to the
   * next candidate, up to maxAttempts nodes. Never moves after an unknown outcome (timeout): that node may still commit.
   * A definitive refusal is safe to move on from because the agent journaled the fence before refusing: no allocate of
   * this request at that fence or below (a slow copy from a dead coordinator) can commit there afterwards.
   * `untouchedAtStart`: this coordinator has just written the intent naming its node and nothing was sent there yet, so
   * "no responders" proves the node never saw the request. Otherwise an earlier allocate may have been committed there
   * before the agent went down, and "no responders" is an unknown outcome too.
   */
  async #drive(
    req: PlaceRequest,
    start: StoredIntent,
    queue: string[],
    preempted: Preempted,
    untouchedAtStart: boolean,
  ): Promise<Result<PlaceReply> | Raced> {
    const { requestId } = req.request;
    let current = start;
    let untouched = untouchedAtStart;
    const refusals: Record<string, number> = {};
    for (;;) {
      const intent = current.value;
      const nodeId = intent.nodeId;
      const result = await this.#allocate(nodeId, req, intent.attempt, untouched);
      if (result.ok) {
        if (result.value.status === 'active' || result.value.status === 'reserved')
          return this.#placed(req, current, result.value, preempted);
        return this.#releasedOnNode(current, result.value);
      }
      if (isFenced(result.error)) return 'raced';
      const kind = classifyFailure(result.error);
      if (kind === 'unknown') {
        // The agent may commit this request: the intent stays pending on this node; a retry asks it again.
        return err('timeout', `node ${nodeId} did not answer place ${requestId}: ${result.error.message}; retry with the same request id`, {
          requestId,
          nodeId,
          cause: result.error.code,
        });
      }
      if (kind === 'final') return this.#fail(current, result.error);
      refusals[AGENT_REFUSED] = (refusals[AGENT_REFUSED] ?? 0) + 1;
      this.#d.logger.debug({ requestId, node: nodeId, code: result.error.code }, 'node refused placement');
      const excluded = new Set([...intent.refusedBy, nodeId, ...(intent.movesFrom === undefined ? [] : [intent.movesFrom.nodeId])]);
      let lastDecision: PlacementDecision | undefined;
      let moved: StoredIntent | undefined;
      while (moved === undefined && nodesAsked(intent) < this.#d.config.maxAttempts) {
        let next = queue.find((n) => !excluded.has(n));
        if (next === undefined) {
          const again = this.#decide(req, excluded);
          if (!again.ok) break;
          lastDecision = again.value;
          queue = again.value.candidates.slice(1);
          next = again.value.candidates[0];
          if (next === undefined) break;
        } else queue = queue.slice(queue.indexOf(next) + 1);
        const driven = await this.#d.store.drive(current, { nodeId: next });
        if (driven.ok) moved = driven.value;
        else if (driven.error.code === 'conflict') return 'raced';
        else if (isPerNodeQuota(driven.error)) {
          refusals[PER_NODE_QUOTA] = (refusals[PER_NODE_QUOTA] ?? 0) + 1;
          excluded.add(next);
        } else return driven; // unavailable: the intent stays pending on the node that refused; the reconciler settles it
      }
      if (moved === undefined) {
        const decision = lastDecision ?? unwrapOr(this.#decide(req, excluded));
        return this.#fail(current, this.#nothingFitsError(decision, refusals, nodesAsked(intent), [...intent.refusedBy, nodeId]));
      }
      current = moved;
      untouched = true; // this coordinator just moved the intent there: nothing was sent to that node for this request
    }
  }

  /**
   * Sends the allocate with the intent's fence (retrying unknown outcomes `timeoutRetries` times, same fence). Once an
   * allocate for this request may have reached the node (an earlier drive, or a send that timed out), only a refusal
   * that proves the fence (provesFence) is definitive: "no responders" or a stopped host manager is an unknown outcome,
   * since the earlier copy may have committed; the intent then stays on the node, counted, until a retry or the
   * reconciler's fence settles it.
   */
  #allocate(nodeId: string, req: PlaceRequest, fence: number, untouched: boolean): Promise<Result<Allocation>> {
    // The agent counts the anti-affinity group and refuses past its limit (the authority, since the view may be stale).
    const group = req.placement.group;
    const affinity = agentAffinity(req);
    const request = { ...req.request, fence, ...(group === undefined ? {} : { group }), ...(affinity.length === 0 ? {} : { affinity }) };
    const once = () => this.#d.agents.call(nodeId, 'allocate', request, { requestId: req.request.requestId });
    return (async () => {
      let mayHaveReached = !untouched;
      for (let retry = 0; ; retry++) {
        let result = await once();
        if (!result.ok && mayHaveReached && classifyFailure(result.error) === 'refused' && !provesFence(result.error)) {
          const what = isNoResponders(result.error) ? 'is not answering now' : `answered ${result.error.code} (${result.error.message})`;
          result = err(
            'timeout',
            `node ${nodeId} ${what}, and an earlier allocate for ${req.request.requestId} may have reached it; the placement stays on it`,
            { nodeId, requestId: req.request.requestId },
          );
        }
        if (result.ok || classifyFailure(result.error) !== 'unknown' || retry >= this.#d.config.timeoutRetries) return result;
        mayHaveReached = true;
      }
    })();
  }

  /**
   * Answers the placement as soon as its node's durable commit is known, and records `placed` afterwards, off the
   * critical path (README "The place protocol": why answering first never breaks). Until that write lands the intent
   * reads pending, counted, naming this node: a retry drives the node again and gets the same allocation replayed, a
   * reader that needs it placed asks the node (settlePending), and a coordinator that dies in between leaves it to the
   * reconciler's fence, which finds it held and writes placed.
   */
  #placed(req: PlaceRequest, start: StoredIntent, allocation: Allocation, preempted: Preempted, othersPreempted = 0): Result<PlaceReply> {
    const { requestId } = req.request;
    const nodeId = start.value.nodeId;
    const reply: PlaceReply = {
      nodeId,
      allocation,
      cpuset: allocation.cpu?.cpuset ?? [],
      preempted,
      ...(othersPreempted === 0 ? {} : { othersPreempted }),
      attempts: nodesAsked(start.value),
    };
    if (req.placement.strategy === 'round-robin' || this.#d.config.defaultStrategy === 'round-robin') this.#roundRobinCursor = nodeId;
    // Two drives of one request answered here at once (concurrent retries): the second waits for the first's write too.
    const earlier = this.#recording.get(requestId);
    const recording = Promise.all([earlier, this.#recordPlaced(start, reply)])
      .then(() => undefined)
      .finally(() => {
        if (this.#recording.get(requestId) === recording) this.#recording.delete(requestId);
      });
    this.#recording.set(requestId, recording);
    return ok(reply);
  }

  /**
   * The deferred `placed` compare-and-set. A lost one re-reads: the same node driven further (a concurrent retry) is
   * placed from the fresh revision; placed or released there already, nothing is left to do. An intent that names
   * another node cannot happen with fencing agents (it leaves a node only after that node refused at a fence above
   * every earlier drive, and a node holding the allocation replays it instead of refusing): logged, and the sweep's.
   * A KV error is tried again twice; then the intent stays pending for a retry or the reconciler.
   */
  async #recordPlaced(start: StoredIntent, reply: PlaceReply): Promise<void> {
    const { requestId, nodeId } = start.value;
    let at = start;
    let failures = 0;
    for (let round = 0; round < 8; round++) {
      const written = await this.#d.store.placed(at, reply);
      if (written.ok) return;
      // A KV error (the outcome may be unknown): ask again, a few times; a write that did land answers conflict next.
      if (written.error.code !== 'conflict' && ++failures < 3) continue;
      if (written.error.code !== 'conflict') {
        this.#d.logger.warn(
          { requestId, node: nodeId, code: written.error.code },
          'placed not recorded; the intent stays pending for a retry or the reconciler',
        );
        return;
      }
      const fresh = await this.#d.store.get(requestId);
      if (!fresh.ok || fresh.value === null) return;
      const f = fresh.value.value;
      if (f.nodeId === nodeId && f.state === 'pending') {
        at = fresh.value;
        continue;
      }
      if (f.nodeId !== nodeId)
        this.#d.logger.error(
          { requestId, node: nodeId, intentNode: f.nodeId, state: f.state },
          'placement committed and answered on a node the intent left (an agent that does not fence?); the sweep decides',
        );
      return;
    }
  }

  // ---------- the parts a batch (place-batch.ts) drives its members with ----------

  /**
   * The tenant's place rate for a batch: one token per member (capped at a bucket's burst), since each is a place an
   * agent commits, and a refused batch's rollback releases its members without any release token.
   */
  admitPlace(tenantId: string, members: number): Result<void> {
    const quota = this.#d.quotas.quotaOf(tenantId);
    return quota === undefined ? ok(undefined) : this.#limiter.admit(quota, 'place', this.#d.clock.monotonic(), members);
  }

  /** What decide() is told besides the request (strategy, cursor, the tenant's per-node limit). */
  contextFor(req: PlaceRequest, exclude: ReadonlySet<string> = new Set()): PlacementContext {
    return this.#placementContext(req, exclude);
  }

  /** The allocate of a place (see #allocate): fenced, retried, an unknown outcome never mistaken for a refusal. */
  allocateOn(nodeId: string, req: PlaceRequest, fence: number, untouched: boolean): Promise<Result<Allocation>> {
    return this.#allocate(nodeId, req, fence, untouched);
  }

  /** A member committed on its node: its answer, and its `placed` written after it, as a place's (see #placed). */
  answerPlaced(req: PlaceRequest, at: StoredIntent, allocation: Allocation): Result<PlaceReply> {
    return this.#placed(req, at, allocation, []);
  }

  /** Resolves once every deferred `placed` write started so far has landed or given up (a stopping coordinator waits). */
  async settled(): Promise<void> {
    await Promise.all([...this.#recording.values()]);
  }

  /**
   * A pending intent as a reader that needs to know whether it is placed must see it: a placement this coordinator
   * answered and is still recording is awaited and re-read; one still pending is asked of its node (settlePending).
   */
  async #settledIntent(pending: StoredIntent): Promise<Result<StoredIntent | null>> {
    const recording = this.#recording.get(pending.value.requestId);
    if (recording === undefined) return settlePending(this.#d, pending);
    await recording;
    const read = await this.#d.store.get(pending.value.requestId);
    if (!read.ok || read.value?.value.state !== 'pending') return read;
    return settlePending(this.#d, read.value);
  }

  /**
   * The node answered with an allocation that no longer holds capacity (released there, or a reservation that expired):
   * it is never a placement (finding 7). The intent becomes released, its quota given back, and the client hears conflict.
   */
  async #releasedOnNode(at: StoredIntent, allocation: Allocation): Promise<Result<never> | Raced> {
    const { requestId } = at.value;
    const cause = allocation.expiresAt !== undefined ? 'expiry' : 'agent';
    const written = await this.#d.store.released(at, cause);
    if (!written.ok) return written.error.code === 'conflict' ? 'raced' : written;
    return err(
      'conflict',
      `placement ${requestId} is ${allocation.status} on node ${at.value.nodeId}${cause === 'expiry' ? ' (its reservation expired)' : ''}; use a new request id`,
      {
        requestId,
        state: 'released',
        allocationId: allocation.id,
      },
    );
  }

  /** Marks the intent failed (nothing placed) and answers the error; the usage goes back in the same write. */
  async #fail(current: StoredIntent, error: AllotError): Promise<Result<never> | Raced> {
    const written = await this.#d.store.failed(current, error);
    if (!written.ok) return written.error.code === 'conflict' ? 'raced' : written;
    return { ok: false, error };
  }

  #decide(req: PlaceRequest, exclude: ReadonlySet<string>): Result<PlacementDecision> {
    return decide(this.#d.view.index, req.request, req.placement, this.#placementContext(req, exclude));
  }

  #placementContext(req: PlaceRequest, exclude: ReadonlySet<string>): PlacementContext {
    const quota = this.#d.quotas.quotaOf(req.request.tenantId);
    return {
      strategy: this.#d.config.defaultStrategy,
      random: this.#d.random,
      maxCandidates: this.#d.config.maxCandidates,
      exclude,
      ...(this.#roundRobinCursor === undefined ? {} : { roundRobinCursor: this.#roundRobinCursor }),
      ...(quota?.maxVmsPerNode === undefined ? {} : { maxVmsPerNode: quota.maxVmsPerNode }),
    };
  }

  #nothingFits(decision: PlacementDecision, extra: Record<string, number>, note?: string): Result<never> {
    return { ok: false, error: this.#nothingFitsError(decision, extra, 0, [], note) };
  }

  #nothingFitsError(
    decision: PlacementDecision | undefined,
    agentRefusals: Record<string, number>,
    attempts: number,
    refusedBy: string[],
    note?: string,
  ): AllotError {
    const rejected: Record<string, number> = { ...(decision?.rejected ?? {}) };
    // Nodes that refused are counted under "already tried" by the decision; name why instead.
    if (refusedBy.length > 0) {
      const tried = rejected['already tried'] ?? 0;
      if (tried > 0) delete rejected['already tried'];
      for (const [reason, n] of Object.entries(agentRefusals)) rejected[reason] = (rejected[reason] ?? 0) + n;
    }
    const total = this.#d.view.size;
    let message = unavailableMessage(total, rejected);
    if (attempts > 0) message += ` Asked ${attempts} node(s): ${refusedBy.join(', ')}.`;
    if (note !== undefined) message += ` ${note}.`;
    return errorOf('insufficient_capacity', message, { rejected, nodes: total, attempts, refusedBy });
  }

  /**
   * Preemption, placement's post-filter (@allot/placement post-filter.ts): from the view alone it finds, over every node,
   * the lowest priority level whose eviction makes room somewhere and ranks a sample of the nodes at that level; the
   * live allocations of the best `config.preemptionNodes` of them are fetched here, every page (finding 11: a plan made
   * from a partial list could miss the cheapest victims), since only the agents hold them; then the exact plans, best
   * first. A node whose list cannot be fetched is left out. `exclude`: nodes that refused this preemption already.
   */
  async #planPreemption(req: PlaceRequest, exclude: ReadonlySet<string>): Promise<PreemptionPlan[]> {
    const targets = preemptionTargets(
      this.#d.view.index,
      req.request,
      req.placement,
      this.#placementContext(req, exclude),
      this.#d.config.preemptionNodes,
    );
    if (!targets.ok || targets.value.level === null) return [];
    const named = targets.value.nodes;
    const lists = await Promise.all(named.map((nodeId) => allAllocations(this.#d.agents, nodeId, { status: 'live' }, { pageSize: 1_000 })));
    const fetched = new Map<string, readonly Allocation[]>();
    named.forEach((nodeId, i) => {
      const list = lists[i];
      if (list !== undefined && list.ok) fetched.set(nodeId, list.value.allocations);
    });
    return rankPreemptionPlans(this.#d.view.index, req.request, fetched, targets.value.level);
  }

  /**
   * Executes the plan through the agent's `preempt` verb, at the intent's fence: the agent releases the victims and
   * allocates this request in one turn and one ledger record, or refuses and nothing changes there (the victims keep
   * running). Placed: the victims' intents are released (their tenants' usage given back, each in its atomic batch;
   * the agent's preempted events do the same for any this misses). With a grace period the agent answers the
   * preemptor `reserved` until the deadline and the victims still run: their intents stay counted until the agent's
   * preempted events at the deadline end them (quota-events.ts).
   * A refusal the agent journaled the fence for (no room, victims gone or changed, cordoned), or any refusal of a node
   * nothing was sent to before, moves on as a placement does: the intent moves by compare-and-set (attempt+1) to the
   * best plan of a fresh post-filter run without the nodes that refused, up to config.maxAttempts nodes; no victim on a
   * refusing node was touched. With no plan left the intent fails with the agent's reason. An unknown outcome leaves it
   * pending on the node (a retry drives allocate there at a higher fence, which replays the preemptor if the preempt
   * committed, and the reconciler settles it otherwise).
   */
  async #preempt(req: PlaceRequest, start: StoredIntent, first: PreemptionPlan): Promise<Result<PlaceReply> | Raced> {
    const { requestId } = req.request;
    let current = start;
    let plan = first;
    let untouched = true; // this coordinator just wrote the intent naming the node: nothing was sent there yet
    for (;;) {
      const nodeId = current.value.nodeId;
      const victims = plan.victims.map((v) => v.id);
      const result = await this.#sendPreempt(req, current, victims, untouched);
      if (result.ok) return this.#preempted(req, current, result.value);
      if (isFenced(result.error)) return 'raced';
      if (classifyFailure(result.error) === 'unknown') {
        return err(
          'timeout',
          `node ${nodeId} did not answer the preemption for ${requestId}: ${result.error.message}; retry with the same request id`,
          { requestId, nodeId, cause: result.error.code },
        );
      }
      this.#d.logger.info(
        { requestId, node: nodeId, code: result.error.code, victims },
        'preemption refused by the agent; its allocations are untouched',
      );
      const refusal = errorOf(result.error.code, `preemption on ${nodeId} refused, nothing was released: ${result.error.message}`, {
        ...result.error.details,
        nodeId,
      });
      // Left unconverted by #sendPreempt, a refusal of the `refused` kind is safe too: the node never saw this request.
      if (!preemptRefusalMovesOn(result.error) && classifyFailure(result.error) !== 'refused') return this.#fail(current, refusal);
      // Re-plan without every node that refused, and move the intent to the best plan's node (CAS, attempt+1).
      const excluded = new Set([...current.value.refusedBy, nodeId]);
      let moved: StoredIntent | undefined;
      while (moved === undefined && nodesAsked(current.value) < this.#d.config.maxAttempts) {
        const next = (await this.#planPreemption(req, excluded))[0];
        if (next === undefined) break;
        const driven = await this.#d.store.drive(current, { nodeId: next.nodeId });
        if (driven.ok) {
          moved = driven.value;
          plan = next;
        } else if (driven.error.code === 'conflict') return 'raced';
        else if (isPerNodeQuota(driven.error)) excluded.add(next.nodeId);
        else return driven; // unavailable: the intent stays pending on the node that refused; the reconciler settles it
      }
      if (moved === undefined) return this.#fail(current, refusal);
      current = moved;
      untouched = true;
    }
  }

  /**
   * Sends the preempt with the intent's fence, retrying unknown outcomes `timeoutRetries` times at the same fence. As
   * for allocate: on the first send to a node nothing was sent to, any refusal is definitive; after a send that may
   * have arrived, only one that proves the fence (the agent journals it before refusing a preempt) is.
   */
  async #sendPreempt(
    req: PlaceRequest,
    current: StoredIntent,
    victims: string[],
    untouched: boolean,
  ): Promise<Result<{ allocation: Allocation; victims: Allocation[] }>> {
    const { requestId } = req.request;
    const nodeId = current.value.nodeId;
    const group = req.placement.group;
    const request = { ...req.request, fence: current.value.attempt, ...(group === undefined ? {} : { group }) };
    const graceMs = req.placement.preemptionGraceMs;
    const message = { request, victims, ...(graceMs === undefined ? {} : { graceMs }) };
    let result = await this.#d.agents.call(nodeId, 'preempt', message, { requestId });
    let mayHaveReached = !untouched;
    for (let retry = 0; !result.ok && classifyFailure(result.error) === 'unknown' && retry < this.#d.config.timeoutRetries; retry++) {
      mayHaveReached = true;
      result = await this.#d.agents.call(nodeId, 'preempt', message, { requestId });
    }
    if (!result.ok && mayHaveReached && classifyFailure(result.error) === 'refused' && !preemptRefusalMovesOn(result.error)) {
      return err(
        'timeout',
        `node ${nodeId} answered ${result.error.code} (${result.error.message}), and an earlier preempt for ${requestId} may have reached it`,
        { nodeId, requestId },
      );
    }
    return result;
  }

  /** The preempt committed: the victims' intents are released (unless a grace period keeps them running), then placed. */
  async #preempted(
    req: PlaceRequest,
    current: StoredIntent,
    done: { allocation: Allocation; victims: Allocation[] },
  ): Promise<Result<PlaceReply> | Raced> {
    const { allocation } = done;
    if (allocation.status !== 'active' && allocation.status !== 'reserved') return this.#releasedOnNode(current, allocation);
    const victims = done.victims.map((v) => ({ allocationId: v.id, requestId: v.requestId, priority: v.priority }));
    const stillRunning = done.victims.some((v) => v.status === 'releasing');
    for (const victim of stillRunning ? [] : victims) {
      const marked = await this.#markReleased(victim.requestId, 'preemption', req.request.requestId);
      if (!marked.ok)
        this.#d.logger.warn(
          { requestId: victim.requestId, error: marked.error.message },
          'preempted placement not marked released; the events consumer or a recount settles it',
        );
    }
    // The reply names only the preemptor's own victims; other tenants' are counted, never named (as a check's plan).
    const preempted = victims.filter((_, i) => done.victims[i]?.tenantId === req.request.tenantId);
    const others = victims.length - preempted.length;
    return this.#placed(req, current, allocation, preempted, others);
  }

  /** The placement's intent (when the coordinators made it) becomes released: its usage is given back in the same write. */
  async #markReleased(placementRequestId: string, cause: ReleaseCause, preemptedBy?: string): Promise<Result<void>> {
    for (let round = 0; round < 8; round++) {
      const read = await this.#d.store.get(placementRequestId);
      if (!read.ok) return read;
      const at = read.value;
      if (at === null || at.value.state === 'released' || at.value.state === 'failed') return ok(undefined);
      // A move marked it while its release was in flight (sim seed 150 with moves): its held destination goes first.
      const dropped = await releaseHeldDestination(this.#d, at.value);
      if (!dropped.ok) return dropped;
      const written = await this.#d.store.released(at, cause, preemptedBy);
      if (written.ok) return ok(undefined);
      if (written.error.code !== 'conflict') return written;
    }
    return err('unavailable', `placement intent ${placementRequestId} keeps changing; retry`, { requestId: placementRequestId });
  }

  /**
   * Releases a placement by its request id: finds the node in the intent, asks its agent (idempotent by the release's
   * request id), marks the intent released (usage given back in the same write). Releasing twice answers the same
   * allocation.
   */
  async release(req: ClusterReleaseRequest): Promise<Result<Allocation>> {
    const first = await this.#d.store.get(req.placementRequestId);
    if (!first.ok) return first;
    // Answered placements may read pending until their deferred `placed` write lands: settle it before deciding.
    const read = first.value?.value.state === 'pending' ? await this.#settledIntent(first.value) : first;
    if (!read.ok) return read;
    const intent = read.value?.value;
    if (intent === undefined || (req.tenantId !== undefined && req.tenantId !== intent.tenantId)) {
      return err('not_found', `no placement ${req.placementRequestId}${req.tenantId === undefined ? '' : ` for tenant ${req.tenantId}`}`, {
        placementRequestId: req.placementRequestId,
      });
    }
    if (intent.state === 'failed')
      return err('not_found', `placement ${req.placementRequestId} placed nothing`, {
        placementRequestId: req.placementRequestId,
        state: 'failed',
      });
    if (intent.state === 'pending') {
      return err(
        'conflict',
        `placement ${req.placementRequestId} is still pending on ${intent.nodeId}; retry the place with its request id first`,
        { placementRequestId: req.placementRequestId, state: 'pending' },
      );
    }
    // A move holding a destination for it: refused like a resize (the destination counts 0 against the quota while the
    // source counts; releasing the source alone would leave the held destination uncounted on its node).
    const moving = intent.state === 'placed' ? intent.movingTo : undefined;
    if (moving !== undefined) {
      const dest = await this.#d.store.get(moving.requestId);
      if (!dest.ok) return dest;
      const d = dest.value?.value;
      if (d !== undefined && d.movesFrom !== undefined && (d.state === 'pending' || d.state === 'placed'))
        return err(
          'conflict',
          `placement ${req.placementRequestId} is being moved by move ${moving.moveRequestId}; confirm or abort it first`,
          { placementRequestId: req.placementRequestId, reason: 'moving', moveRequestId: moving.moveRequestId },
        );
    }
    const leftover = await this.#releaseMoveSource(intent);
    if (!leftover.ok) return leftover;
    const quota = this.#d.quotas.quotaOf(intent.tenantId);
    if (quota !== undefined) {
      const admitted = this.#limiter.admit(quota, 'release', this.#d.clock.monotonic());
      if (!admitted.ok) return admitted;
    }
    const released = await this.#d.agents.call(
      intent.nodeId,
      'release',
      { requestId: req.requestId, allocationRequestId: req.placementRequestId, fence: intent.attempt, reason: 'released by the tenant' },
      { requestId: req.requestId },
    );
    if (!released.ok) return released;
    const marked = await this.#markReleased(req.placementRequestId, 'tenant');
    if (!marked.ok) return marked; // released on the node, not yet in the intent: the same release again finishes it
    return released;
  }

  /**
   * A moved VM's source, which the confirm released on its node only if that node answered (else it is left to the
   * sweep): released again first (idempotent, the confirm's release id), so the destination's quota goes back only once
   * no copy of the VM runs. A source node that is lost, decommissioned or gone from the view is the sweep's and the
   * decommission's; one that is up and does not answer refuses the release (`unavailable`, retry).
   */
  async #releaseMoveSource(intent: PlacementIntent): Promise<Result<void>> {
    const from = intent.movedFrom;
    if (from === undefined || from.nodeId === intent.nodeId) return ok(undefined);
    const node = this.#d.view.get(from.nodeId);
    if (node === undefined || node.liveness === 'lost' || node.state === 'decommissioned') return ok(undefined);
    const released = await releaseSourceOnNode(this.#d.agents, from, intent.nodeId, from.moveRequestId);
    if (released.ok) return released;
    return err(
      'unavailable',
      `placement ${intent.requestId} moved from ${from.nodeId}, whose copy is not yet released there (${released.error.message}); retry`,
      { placementRequestId: intent.requestId, nodeId: from.nodeId, reason: 'move_source' },
    );
  }
}

/** The nodes a place must not use: a move's source node. */
function avoided(move: MoveDestination | undefined): ReadonlySet<string> {
  return new Set(move === undefined ? [] : [move.movesFrom.nodeId]);
}

function unwrapOr<T>(r: Result<T>): T | undefined {
  return r.ok ? r.value : undefined;
}

/**
 * The required per-node affinity the agent can check itself (the group's count on its host): every such term but one
 * naming the request's own group, whose first member may land anywhere (a cluster-wide fact the agent cannot see).
 */
function agentAffinity(req: PlaceRequest): string[] {
  const own = req.placement.group?.name;
  return (req.placement.affinity ?? [])
    .filter((t) => t.mode === 'required' && t.topologyKey === undefined && t.group !== own)
    .map((t) => t.group);
}
