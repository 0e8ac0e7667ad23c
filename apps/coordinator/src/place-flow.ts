import { createHash } from 'node:crypto';
import { err, errorOf, GROUP_MAX_METADATA_KEY, GROUP_METADATA_KEY, ok, PREEMPTION_PRIORITY_GAP, type Allocation, type AllotError, type ClusterCheckReply, type ClusterReleaseRequest, type PlaceReply, type PlaceRequest, type Result } from '@allot/core';
import { labelsSatisfy, place as decide, planPreemption, unavailableMessage, type PlacementDecision, type PreemptionPlan } from '@allot/placement';
import { RateLimiter } from '@allot/quota';
import type { Logger } from 'pino';
import { classifyFailure, isNoResponders, type AgentClient } from './agents.ts';
import type { PlaceConfig } from './config.ts';
import { requestHash, type PlacementIntent, type PlacementIntentSchema } from './intents.ts';
import type { KvStore, Versioned } from './kv-store.ts';
import type { QuotaService } from './quotas.ts';
import type { ClusterView } from './view.ts';

/** What the place flow needs from the rest of the coordinator. */
export interface PlaceFlowDeps {
  readonly coordinatorId: string;
  readonly view: ClusterView;
  readonly intents: KvStore<typeof PlacementIntentSchema>;
  readonly quotas: QuotaService;
  readonly agents: AgentClient;
  readonly config: PlaceConfig;
  readonly logger: Logger;
  readonly now: () => number;
  readonly random: () => number;
}

type Preempted = PlaceReply['preempted'];

/** Reason counted for a node whose agent refused although the view said it fits (the view was stale). */
const AGENT_REFUSED = 'refused by its agent';

/**
 * Place, check and release at cluster scope: orchestration only. Decisions come from @allot/placement; commits are the
 * agents'; idempotency across coordinators comes from the placement intent in KV (see README.md, "The place protocol").
 */
export class PlaceFlow {
  readonly #d: PlaceFlowDeps;
  /** Rate limits per coordinator: with N coordinators a tenant is admitted up to N x its rate (see README.md). */
  readonly #limiter = new RateLimiter();
  #roundRobinCursor: string | undefined;

  constructor(deps: PlaceFlowDeps) {
    this.#d = deps;
  }

  /** Dry run: where it would go and why not elsewhere; changes nothing. */
  check(req: PlaceRequest): Result<ClusterCheckReply> {
    const decision = this.#decide(req, new Set());
    if (!decision.ok) return decision;
    const d = decision.value;
    return ok({ fits: d.candidates.length > 0, candidates: d.candidates, rejected: d.rejected, message: d.message });
  }

  async place(req: PlaceRequest): Promise<Result<PlaceReply>> {
    const requestId = req.request.requestId;
    const hash = requestHash(req);
    // Create first: a tenant without a quota record has no rate limit to apply before knowing whether the id is new, so
    // the intent is created straight away (create-if-absent); losing the create means the id exists: follow it below.
    // With nothing fitting (or preemption to plan) the existing intent must decide first, so that path reads first.
    if (this.#d.quotas.quotaOf(req.request.tenantId) === undefined) {
      const decision = this.#decide(req, new Set());
      if (decision.ok && decision.value.candidates.length > 0) {
        const started = await this.#create(req, hash, null, decision.value.candidates, null);
        if (started !== 'raced') return started;
      }
    }
    for (let round = 0; round < 4; round++) {
      const read = await this.#d.intents.get(requestId);
      if (!read.ok) return read;
      const existing = read.value;
      if (existing !== null) {
        const intent = existing.value;
        if (intent.hash !== hash) return err('conflict', `request ${requestId} was used for a different place request`, { requestId, field: 'request.requestId' });
        if (intent.state === 'placed' && intent.reply !== undefined) return ok(intent.reply);
        if (intent.state === 'released') return err('conflict', `placement ${requestId} was placed and then released; use a new request id`, { requestId, state: 'released' });
        // Following a pending intent: an allocate may already have reached its node (sent by whoever wrote it).
        if (intent.state === 'pending') return this.#drive(req, existing, [], [], false);
        // failed: nothing was placed; try again from the start, taking over the intent by CAS.
      } else {
        const quota = this.#d.quotas.quotaOf(req.request.tenantId);
        if (quota !== undefined) {
          const admitted = this.#limiter.admit(quota, 'place', this.#d.now());
          if (!admitted.ok) return admitted;
        }
      }
      const started = await this.#start(req, hash, existing);
      if (started === 'raced') continue; // another coordinator wrote the intent first: follow it
      return started;
    }
    return err('unavailable', `placement intent ${requestId} keeps changing under this coordinator; retry`, { requestId });
  }

  /** First decision, intent creation (or takeover of a failed one), then the drive. */
  async #start(req: PlaceRequest, hash: string, failed: Versioned<PlacementIntent> | null): Promise<Result<PlaceReply> | 'raced'> {
    const decision = this.#decide(req, new Set());
    if (!decision.ok) return decision;
    let candidates = decision.value.candidates;
    let plan: PreemptionPlan | null = null;
    if (candidates.length === 0) {
      if (!req.placement.allowPreemption) return this.#nothingFits(decision.value, {});
      plan = await this.#planPreemption(req);
      if (plan === null) return this.#nothingFits(decision.value, {}, 'no preemption of allocations at least 10 priority points lower makes room on any node');
      candidates = [plan.nodeId];
    }
    return this.#create(req, hash, failed, candidates, plan);
  }

  /** Writes the intent naming the first candidate (create-if-absent, or CAS over a failed one), then drives it. */
  async #create(req: PlaceRequest, hash: string, failed: Versioned<PlacementIntent> | null, candidates: readonly string[], plan: PreemptionPlan | null): Promise<Result<PlaceReply> | 'raced'> {
    const first = candidates[0] as string;
    const intent: PlacementIntent = {
      requestId: req.request.requestId,
      tenantId: req.request.tenantId,
      hash,
      state: 'pending',
      nodeId: first,
      attempt: 1,
      refusedBy: [],
      coordinatorId: this.#d.coordinatorId,
      updatedAt: this.#d.now(),
      memoryMiB: req.request.resources.memoryMiB,
      vcpus: req.request.resources.vcpus,
    };
    const written = failed === null ? await this.#d.intents.create(intent.requestId, intent) : await this.#d.intents.update(intent.requestId, intent, failed.revision);
    if (!written.ok) return written.error.code === 'conflict' ? 'raced' : written;
    let preempted: Preempted = [];
    if (plan !== null) {
      const evicted = await this.#evict(req, plan);
      if (!evicted.ok) return this.#fail({ value: intent, revision: written.value }, evicted.error);
      preempted = evicted.value;
    }
    return this.#drive(req, { value: intent, revision: written.value }, candidates.slice(1), preempted, true);
  }

  /**
   * Asks the intent's node, and on a definitive refusal moves the intent (CAS) to the next candidate, up to
   * maxAttempts nodes. Never moves after an unknown outcome (timeout): that node may still commit.
   * `untouchedAtStart`: this coordinator has just written the intent naming its node and nothing was sent there yet, so
   * "no responders" proves the node never saw the request. Otherwise an earlier allocate (a timed-out attempt, or one
   * sent by a coordinator that died) may have been committed there, and "no responders" (the node is down now) is an
   * unknown outcome too: moving on would leave the node holding a second allocation when it comes back.
   */
  async #drive(req: PlaceRequest, start: Versioned<PlacementIntent>, queue: string[], preempted: Preempted, untouchedAtStart: boolean): Promise<Result<PlaceReply>> {
    const { requestId, tenantId, resources } = req.request;
    let current = start;
    let untouched = untouchedAtStart;
    const agentRefusals: Record<string, number> = {};
    for (;;) {
      const intent = current.value;
      const nodeId = intent.nodeId as string;
      const reserved = await this.#d.quotas.reserve(tenantId, requestId, { nodeId, memoryMiB: resources.memoryMiB, vcpus: resources.vcpus });
      let failure: AllotError | undefined;
      if (!reserved.ok) {
        // The per-node VM limit is a property of this node only: another node may still take it.
        if (reserved.error.code === 'quota_exceeded' && reserved.error.details?.['limit'] === 'maxVmsPerNode') failure = reserved.error;
        else return this.#fail(current, reserved.error);
      } else {
        const result = await this.#allocate(nodeId, req, untouched);
        if (result.ok) return this.#placed(req, current, result.value, preempted);
        const kind = classifyFailure(result.error);
        if (kind === 'unknown') {
          // The agent may commit this request: the intent stays pending on this node; a retry asks it again.
          return err('timeout', `node ${nodeId} did not answer place ${requestId}: ${result.error.message}; retry with the same request id`, { requestId, nodeId, cause: result.error.code });
        }
        if (kind === 'final') return this.#fail(current, result.error);
        failure = result.error;
      }
      const reason = failure.code === 'quota_exceeded' ? 'tenant quota: max VMs per node' : AGENT_REFUSED;
      agentRefusals[reason] = (agentRefusals[reason] ?? 0) + 1;
      this.#d.logger.debug({ requestId, node: nodeId, code: failure.code }, 'node refused placement');
      const refusedBy = [...intent.refusedBy, nodeId];
      let next: string | undefined;
      let lastDecision: PlacementDecision | undefined;
      if (intent.attempt < this.#d.config.maxAttempts) {
        next = queue.find((n) => !refusedBy.includes(n));
        if (next === undefined) {
          const again = this.#decide(req, new Set(refusedBy));
          if (again.ok) {
            lastDecision = again.value;
            queue = again.value.candidates.slice(1);
            next = again.value.candidates[0];
          }
        } else queue = queue.slice(queue.indexOf(next) + 1);
      }
      if (next === undefined) {
        const recount = lastDecision === undefined ? this.#decide(req, new Set(refusedBy)) : undefined;
        const decision = lastDecision ?? (recount?.ok ? recount.value : undefined);
        const error = this.#nothingFitsError(decision, agentRefusals, intent.attempt, refusedBy);
        return this.#fail({ value: { ...intent, refusedBy }, revision: current.revision }, error);
      }
      const moved: PlacementIntent = { ...intent, nodeId: next, attempt: intent.attempt + 1, refusedBy, coordinatorId: this.#d.coordinatorId, updatedAt: this.#d.now() };
      const written = await this.#d.intents.update(requestId, moved, current.revision);
      if (!written.ok) {
        if (written.error.code !== 'conflict') return written;
        // Another coordinator is driving the same request (a client retry): follow what the intent says now.
        const fresh = await this.#d.intents.get(requestId);
        if (!fresh.ok) return fresh;
        if (fresh.value === null) return err('internal', `placement intent ${requestId} disappeared`, { requestId });
        if (fresh.value.value.state === 'placed' && fresh.value.value.reply) return ok(fresh.value.value.reply);
        if (fresh.value.value.state !== 'pending') return err('conflict', `placement ${requestId} is ${fresh.value.value.state}`, { requestId });
        current = fresh.value;
        untouched = false;
        continue;
      }
      current = { value: moved, revision: written.value };
      untouched = true; // this coordinator just moved the intent there: nothing was sent to that node for this request
    }
  }

  /**
   * Sends the allocate (retrying unknown outcomes `timeoutRetries` times). "No responders" is a definitive refusal only
   * while no allocate for this request can have reached the node before: on the first send to an untouched node.
   */
  #allocate(nodeId: string, req: PlaceRequest, untouched: boolean): Promise<Result<Allocation>> {
    // The agent counts anti-affinity groups by these metadata keys and refuses past the limit (the authority, since the
    // view may be stale); set deterministically so a retry sends the same request.
    const group = req.placement.group;
    const request =
      group === undefined
        ? req.request
        : { ...req.request, metadata: { ...req.request.metadata, [GROUP_METADATA_KEY]: group.name, [GROUP_MAX_METADATA_KEY]: String(group.maxPerNode) } };
    const once = () => this.#d.agents.call(nodeId, 'allocate', request, { requestId: req.request.requestId });
    return (async () => {
      let mayHaveReached = !untouched;
      for (let retry = 0; ; retry++) {
        let result = await once();
        if (!result.ok && mayHaveReached && isNoResponders(result.error)) {
          result = err('timeout', `node ${nodeId} is not answering now, and an earlier allocate for ${req.request.requestId} may have reached it; the placement stays on it`, { nodeId, requestId: req.request.requestId });
        }
        if (result.ok || classifyFailure(result.error) !== 'unknown' || retry >= this.#d.config.timeoutRetries) return result;
        mayHaveReached = true;
      }
    })();
  }

  /** Records the success (CAS to placed) and answers. A lost CAS means a concurrent driver moved the intent away. */
  async #placed(req: PlaceRequest, current: Versioned<PlacementIntent>, allocation: Allocation, preempted: Preempted): Promise<Result<PlaceReply>> {
    const { requestId } = req.request;
    const nodeId = current.value.nodeId as string;
    const reply: PlaceReply = { nodeId, allocation, cpuset: allocation.cpu?.cpuset ?? [], preempted, attempts: current.value.attempt };
    let at = current;
    for (let round = 0; round < 8; round++) {
      const placed: PlacementIntent = { ...at.value, state: 'placed', reply, coordinatorId: this.#d.coordinatorId, updatedAt: this.#d.now() };
      const written = await this.#d.intents.update(requestId, placed, at.revision);
      if (written.ok) {
        if (req.placement.strategy === 'round-robin' || this.#d.config.defaultStrategy === 'round-robin') this.#roundRobinCursor = nodeId;
        return ok(reply);
      }
      if (written.error.code !== 'conflict') return written;
      const fresh = await this.#d.intents.get(requestId);
      if (!fresh.ok) return fresh;
      const f = fresh.value?.value;
      if (f === undefined) return err('internal', `placement intent ${requestId} disappeared`, { requestId });
      if (f.nodeId === nodeId && f.state === 'placed' && f.reply !== undefined) return ok(f.reply);
      if (f.nodeId === nodeId && f.state === 'pending') {
        at = fresh.value as Versioned<PlacementIntent>;
        continue;
      }
      // The intent moved to another node while this node committed: undo here so only the intent's node holds it.
      this.#d.logger.warn({ requestId, node: nodeId, intentNode: f.nodeId }, 'placement committed on a node the intent left; releasing it there');
      await this.#d.agents.call(nodeId, 'release', { requestId: derivedId('undo', requestId, nodeId), allocationRequestId: requestId, reason: `placement ${requestId} moved to ${f.nodeId ?? 'another node'}` });
      return f.state === 'placed' && f.reply !== undefined ? ok(f.reply) : err('timeout', `placement ${requestId} is being driven by another coordinator; retry`, { requestId });
    }
    return err('unavailable', `placement intent ${requestId} keeps changing; retry`, { requestId });
  }

  /** Marks the intent failed (nothing placed), gives the tenant's quota back, answers the error. */
  async #fail(current: Versioned<PlacementIntent>, error: AllotError): Promise<Result<never>> {
    const { requestId, tenantId } = current.value;
    const failed: PlacementIntent = { ...current.value, state: 'failed', error, coordinatorId: this.#d.coordinatorId, updatedAt: this.#d.now() };
    const written = await this.#d.intents.update(requestId, failed, current.revision);
    // Only the writer of `failed` gives the quota back; a lost race means someone else drives the request now.
    if (written.ok) {
      const back = await this.#d.quotas.unreserve(tenantId, requestId);
      if (!back.ok) this.#d.logger.warn({ requestId, tenantId, error: back.error.message }, 'quota not given back');
    }
    return { ok: false, error };
  }

  #decide(req: PlaceRequest, exclude: ReadonlySet<string>): Result<PlacementDecision> {
    const quota = this.#d.quotas.quotaOf(req.request.tenantId);
    return decide(this.#d.view.index, req.request, req.placement, {
      strategy: this.#d.config.defaultStrategy,
      random: this.#d.random,
      maxCandidates: this.#d.config.maxCandidates,
      exclude,
      ...(this.#roundRobinCursor === undefined ? {} : { roundRobinCursor: this.#roundRobinCursor }),
      ...(quota?.maxVmsPerNode === undefined ? {} : { maxVmsPerNode: quota.maxVmsPerNode }),
    });
  }

  #nothingFits(decision: PlacementDecision, extra: Record<string, number>, note?: string): Result<never> {
    return { ok: false, error: this.#nothingFitsError(decision, extra, 0, [], note) };
  }

  #nothingFitsError(decision: PlacementDecision | undefined, agentRefusals: Record<string, number>, attempts: number, refusedBy: string[], note?: string): AllotError {
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
   * The preemption plan with the fewest, then lowest-priority victims on one node, over the schedulable nodes that meet
   * the request's constraints (their allocation lists fetched from their agents, at most config.preemptionNodes).
   */
  async #planPreemption(req: PlaceRequest): Promise<PreemptionPlan | null> {
    const nodes = [];
    for (const v of this.#d.view.index.nodes()) {
      if (v.liveness !== 'ready' || v.snapshot.cordoned) continue;
      const constraintsOk = req.placement.constraints.every((c) => labelsSatisfy(v.snapshot.labels, c));
      const group = req.placement.group;
      if (!constraintsOk || (group !== undefined && (v.snapshot.groups[group.name] ?? 0) >= group.maxPerNode)) continue;
      if (req.placement.strategy === 'manual' && v.nodeId !== req.placement.nodeId) continue;
      nodes.push(v);
      if (nodes.length >= this.#d.config.preemptionNodes) break;
    }
    const lists = await Promise.all(nodes.map((v) => this.#d.agents.call(v.nodeId, 'allocations', { status: 'live' })));
    let best: PreemptionPlan | null = null;
    nodes.forEach((v, i) => {
      const list = lists[i];
      if (list === undefined || !list.ok) return;
      const plan = planPreemption(v, list.value.allocations, req.request, PREEMPTION_PRIORITY_GAP);
      if (plan === null || plan.victims.length === 0) return;
      if (best === null || plan.victims.length < best.victims.length || (plan.victims.length === best.victims.length && maxPriority(plan) < maxPriority(best))) best = plan;
    });
    return best;
  }

  /** Releases the victims through their agent (which emits the preempted events) and marks their intents released. */
  async #evict(req: PlaceRequest, plan: PreemptionPlan): Promise<Result<Preempted>> {
    const preempted: Preempted = [];
    for (const victim of plan.victims) {
      const released = await this.#d.agents.call(plan.nodeId, 'release', {
        requestId: derivedId('preempt', req.request.requestId, victim.id),
        allocationId: victim.id,
        reason: `preempted by ${req.request.requestId}`,
      });
      if (!released.ok) return err(released.error.code === 'not_found' ? 'conflict' : released.error.code, `preempting ${victim.id} on ${plan.nodeId}: ${released.error.message}`, { nodeId: plan.nodeId, allocationId: victim.id });
      preempted.push({ allocationId: victim.id, requestId: victim.requestId, priority: victim.priority });
      await this.#markReleased(victim.requestId, victim.tenantId);
    }
    return ok(preempted);
  }

  /** The placement's intent (when the coordinators made it) becomes released and its tenant's quota is given back. */
  async #markReleased(placementRequestId: string, tenantId: string): Promise<void> {
    for (let round = 0; round < 8; round++) {
      const read = await this.#d.intents.get(placementRequestId);
      if (!read.ok || read.value === null || read.value.value.state === 'released') break;
      const written = await this.#d.intents.update(placementRequestId, { ...read.value.value, state: 'released', updatedAt: this.#d.now(), coordinatorId: this.#d.coordinatorId }, read.value.revision);
      if (written.ok || written.error.code !== 'conflict') break;
    }
    const back = await this.#d.quotas.release(tenantId, placementRequestId);
    if (!back.ok) this.#d.logger.warn({ requestId: placementRequestId, tenantId, error: back.error.message }, 'quota not given back after release');
  }

  /**
   * Releases a placement by its request id: finds the node in the intent, asks its agent (idempotent by the release's
   * request id), marks the intent released and gives the quota back. Releasing twice answers the same allocation.
   */
  async release(req: ClusterReleaseRequest): Promise<Result<Allocation>> {
    const read = await this.#d.intents.get(req.placementRequestId);
    if (!read.ok) return read;
    const intent = read.value?.value;
    if (intent === undefined || (req.tenantId !== undefined && req.tenantId !== intent.tenantId)) {
      return err('not_found', `no placement ${req.placementRequestId}${req.tenantId === undefined ? '' : ` for tenant ${req.tenantId}`}`, { placementRequestId: req.placementRequestId });
    }
    if (intent.state === 'failed') return err('not_found', `placement ${req.placementRequestId} placed nothing`, { placementRequestId: req.placementRequestId, state: 'failed' });
    if (intent.state === 'pending') {
      return err('conflict', `placement ${req.placementRequestId} is still pending on ${intent.nodeId}; retry the place with its request id first`, { placementRequestId: req.placementRequestId, state: 'pending' });
    }
    const quota = this.#d.quotas.quotaOf(intent.tenantId);
    if (quota !== undefined) {
      const admitted = this.#limiter.admit(quota, 'release', this.#d.now());
      if (!admitted.ok) return admitted;
    }
    const nodeId = intent.nodeId as string;
    const released = await this.#d.agents.call(nodeId, 'release', { requestId: req.requestId, allocationRequestId: req.placementRequestId, reason: 'released by the tenant' }, { requestId: req.requestId });
    if (!released.ok) return released;
    await this.#markReleased(req.placementRequestId, intent.tenantId);
    return released;
  }
}

function maxPriority(plan: PreemptionPlan): number {
  return Math.max(...plan.victims.map((v) => v.priority));
}

/** A request id of our own for a sub-request (an undo, a preemption), deterministic so its retries are idempotent. */
function derivedId(kind: string, requestId: string, other: string): string {
  return `${kind}-${createHash('sha256').update(`${requestId}\u0000${other}`).digest('hex').slice(0, 40)}`;
}
