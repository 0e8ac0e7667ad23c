import { createHash } from 'node:crypto';
import { err, errorOf, ok, type Allocation, type AllotError, type Result } from '@allot/core';
import { decideBatch } from '@allot/placement';
import type { PlaceBatchReply, PlaceBatchRequest, PlaceReply, PlaceRequest } from '@allot/protocol';
import type { Logger } from 'pino';
import { classifyFailure, type AgentCaller } from './agents.ts';
import { PlaceConfigSchema } from './config.ts';
import type { IntentStore, StoredIntent } from './intents/intent-store.ts';
import { requestHash } from './intents.ts';
import { isPerNodeQuota, nodesAsked, type PlaceFlow } from './place-flow.ts';
import type { ClusterView } from './view.ts';

/*
 * place.batch: N VMs placed all or nothing (a tenant's cluster, a gang). README "Batch placement" has the argument.
 *
 * 1. One decision for the whole batch on one snapshot (decideBatch: each member reserves what it takes, so later ones
 *    see it; anti-affinity among members through the shared group). Nothing fits for one member: refused, nothing written.
 * 2. ONE atomic KV write: every member's intent, pending at attempt 1, and the tenant's usage record (the quota admits
 *    the whole batch or refuses it). At most MAX_BATCH_MEMBERS (256) members, so one write always carries them
 *    (the server takes 1,000 messages per atomic batch).
 * 3. Every member's allocate at once, each fenced at its intent's attempt, as a place drives one.
 * 4. A member whose allocate has no answer is asked at its fence at once: held there is committed, nothing is refused.
 *    All committed: the answer, in the members' order; each `placed` is written after it, as for a place.
 *    A member refused definitively (the agent journaled its fence, or never saw it): the batch fails. That member's
 *    intent is failed with the batch's error (the mark a retry finds), then every member that committed is released on
 *    its node at its fence (idempotent release id) and its intent released (cause `batch`, quota back); a member whose
 *    outcome is unknown is asked at its fence and released when held. The answer names the refused member.
 *    A member whose node answers neither (and none refused): `timeout` naming it; a retry of the batch settles it.
 * A retry (same batch id, same members) finds every member's intent and follows each: placed answers its reply,
 * pending drives its node again at a higher fence; a batch with a member failed (by its flow, or by a reconciler that
 * found nothing at its fence) failed: it answers that error again after finishing its rollback. A coordinator that dies
 * mid-batch with no retry to follow: the reconcilers settle each member and roll back the batch of a failed one
 * (batch-settle.ts), through rollBackMembers below.
 */

/** What rolling a batch's members back needs (the flow's deps, or a reconciler's). */
export interface RollbackDeps {
  readonly store: IntentStore;
  readonly agents: AgentCaller;
  readonly logger?: Logger;
  readonly agentTimeoutMs?: number;
}

export interface PlaceBatchDeps {
  readonly view: ClusterView;
  readonly store: IntentStore;
  readonly agents: AgentCaller;
  readonly flow: PlaceFlow;
  readonly logger?: Logger;
  readonly agentTimeoutMs?: number;
  /** Nodes one member is asked at most in one call: its own, then candidates after refusals (a place's maxAttempts). */
  readonly maxAttempts?: number;
}

/** PlaceConfig's default maxAttempts, for callers that pass none (tests, the simulator). */
const DEFAULT_MAX_ATTEMPTS = PlaceConfigSchema.parse({}).maxAttempts;

/** One member as it is placed: its place request (the batch's options) and fingerprint. */
interface Member {
  readonly index: number;
  readonly place: PlaceRequest;
  readonly hash: string;
}

/** What one member's drive came to. */
type Outcome =
  | { readonly kind: 'placed'; readonly at: StoredIntent; readonly reply: PlaceReply }
  | { readonly kind: 'committed'; readonly at: StoredIntent; readonly allocation: Allocation }
  /** placedOnce: its node held an allocation of it that ended there (asked at its fence): never moved on elsewhere. */
  | { readonly kind: 'refused'; readonly at: StoredIntent; readonly error: AllotError; readonly placedOnce?: true }
  /** Its node answered an allocation that ended there (released, an expired reservation): it was placed once. */
  | { readonly kind: 'ended'; readonly at: StoredIntent; readonly allocation: Allocation }
  | { readonly kind: 'unknown'; readonly at: StoredIntent; readonly error: AllotError }
  | { readonly kind: 'raced' };

type Raced = 'raced';

/** A node's refusals of a member that fail a batch as `insufficient_capacity` (see settle). */
const NODE_REFUSALS: ReadonlySet<string> = new Set(['insufficient_capacity', 'unavailable', 'timeout']);

/**
 * The anti-affinity group a batch's `maxPerNode` names: the batch's id (hashed when longer than a group name may be;
 * `#` is in no batch id, so the two forms never meet). Groups are per tenant (tenantGroupKey), so two tenants' batches
 * of one id never count each other's members.
 */
function batchGroupName(batchId: string): string {
  const name = `batch/${batchId}`;
  return name.length <= 64 ? name : `batch#${createHash('sha256').update(batchId).digest('hex').slice(0, 40)}`;
}

/** The members as place requests: the batch's placement options, with `maxPerNode` as the batch's own group. */
export function batchMembers(req: PlaceBatchRequest): PlaceRequest[] {
  const placement =
    req.maxPerNode === undefined
      ? req.placement
      : { ...req.placement, group: { name: batchGroupName(req.batchId), maxPerNode: req.maxPerNode } };
  return req.members.map((request) => ({ request, placement }));
}

/** The release id of a member rolled back: the same on every coordinator and every retry (the agent dedupes it). */
function rollbackId(batchId: string, requestId: string): string {
  return `batch-${createHash('sha256').update(`${batchId}\u0000${requestId}`).digest('hex').slice(0, 40)}`;
}

/**
 * Whether this member's intent says its batch failed: failed (refused by its node, or found with nothing at its fence by
 * a reconciler: a batch member is never failed otherwise), or rolled back (released, cause `batch`). A member released
 * for any other cause (its tenant, expiry, preemption, ...) was placed: its batch had succeeded, and stands.
 */
export function marksBatchFailure(intent: StoredIntent['value']): boolean {
  if (intent.state === 'released') return intent.releasedBy === 'batch';
  return intent.state === 'failed';
}

/** The error a failed batch answers: its failed member's, else a plain one (only rolled-back members are left). */
export function batchFailureCause(batchId: string, intents: readonly StoredIntent['value'][]): AllotError {
  const error = intents.find((i) => i.state === 'failed' && i.error !== undefined)?.error;
  return error ?? errorOf('conflict', `batch ${batchId} failed and was rolled back; use new request ids`, { batchId });
}

export async function placeBatch(d: PlaceBatchDeps, req: PlaceBatchRequest): Promise<Result<PlaceBatchReply>> {
  const members: Member[] = batchMembers(req).map((place, index) => ({ index, place, hash: requestHash(place) }));
  for (let round = 0; round < 4; round++) {
    if (round === 0) {
      // A new batch is the common case: one read (the first member) instead of N; a member id that exists all the same
      // makes the batch's write conflict, and the next round reads them all.
      const head = await d.store.get((members[0] as Member).place.request.requestId);
      if (!head.ok) return head;
      if (head.value === null) {
        const outcome = await fresh(d, req, members);
        if (outcome !== 'raced') return outcome;
        continue;
      }
    }
    const reads = await Promise.all(members.map((m) => d.store.get(m.place.request.requestId)));
    const found: (StoredIntent | null)[] = [];
    for (const r of reads) {
      if (!r.ok) return r;
      found.push(r.value);
    }
    const outcome = found.every((f) => f === null) ? await fresh(d, req, members) : await resume(d, req, members, found);
    if (outcome !== 'raced') return outcome;
  }
  return err('unavailable', `batch ${req.batchId}: its members' intents keep changing under this coordinator; retry`, {
    batchId: req.batchId,
  });
}

/** A new batch: decide all, write all, drive all. */
async function fresh(d: PlaceBatchDeps, req: PlaceBatchRequest, members: readonly Member[]): Promise<Result<PlaceBatchReply> | Raced> {
  const first = members[0] as Member;
  const admitted = d.flow.admitPlace(req.tenantId, members.length);
  if (!admitted.ok) return admitted;
  const decided = decideBatch(
    d.view.index,
    members.map((m) => m.place.request),
    first.place.placement,
    d.flow.contextFor(first.place),
  );
  if (!decided.ok) return decided;
  const decision = decided.value;
  if (!decision.fits) {
    const m = members[decision.index] as Member;
    const requestId = m.place.request.requestId;
    return err(
      'insufficient_capacity',
      `batch ${req.batchId}: member ${decision.index} (${requestId}) does not fit beside the ${decision.index} before it: ${decision.decision.message} Nothing was placed.`,
      {
        batchId: req.batchId,
        memberIndex: decision.index,
        requestId,
        rejected: decision.decision.rejected,
        nodes: d.view.size,
      },
    );
  }
  const created = await d.store.createBatch(
    members.map((m) => {
      const r = m.place.request;
      return {
        requestId: r.requestId,
        tenantId: r.tenantId,
        hash: m.hash,
        nodeId: decision.nodes[m.index] as string,
        memoryMiB: r.resources.memoryMiB,
        vcpus: r.resources.vcpus,
        ...(r.memory?.hugepages === undefined ? {} : { hugepages: r.memory.hugepages }),
        asked: m.place,
        batch: { batchId: req.batchId, index: m.index, size: members.length, first: first.place.request.requestId },
      };
    }),
  );
  if (!created.ok) {
    if (created.error.code === 'conflict') return 'raced'; // a member's intent exists now: re-read and follow it
    return { ok: false, error: { ...created.error, details: { ...created.error.details, batchId: req.batchId } } };
  }
  const outcomes = await Promise.all(
    members.map((m) =>
      driveMovingOn(d, m, created.value[m.index] as StoredIntent, candidatesOf(d.view, req, first.place, decision, m.index)),
    ),
  );
  return settle(d, req, members, outcomes);
}

/**
 * A member's candidates after its own node: its decision's other candidates (decided with the members before it
 * reserved), without the nodes its siblings' decisions fill to the batch's maxPerNode (a move there would only be
 * refused by their agent, or race a sibling for the slot); none when the members are held on one node. With a hard
 * rule over failure domains (topologySpread, a required domain affinity), only nodes of its own node's domains: its
 * alternatives were decided without the members after it, so leaving its domain could break the spread they were
 * decided against, which no agent checks.
 */
function candidatesOf(
  view: ClusterView,
  req: PlaceBatchRequest,
  place: PlaceRequest,
  decision: { nodes: readonly string[]; alternatives: readonly (readonly string[])[] },
  index: number,
): string[] {
  if (heldTogether(place)) return [];
  const keys = domainKeys(place);
  const labelsOf = (n: string) => view.get(n)?.snapshot.labels ?? {};
  const own = labelsOf(decision.nodes[index] as string);
  const alternatives = (decision.alternatives[index] ?? []).filter((n) => keys.every((k) => labelsOf(n)[k] === own[k]));
  const max = req.maxPerNode;
  if (max === undefined) return alternatives;
  const siblings = new Map<string, number>();
  for (const [i, n] of decision.nodes.entries()) if (i !== index) siblings.set(n, (siblings.get(n) ?? 0) + 1);
  return alternatives.filter((n) => (siblings.get(n) ?? 0) < max);
}

/**
 * A required same-node affinity to the members' own group: the members after the first were decided beside it, and the
 * agent does not check that term (the group's first member may land anywhere), so none moves on alone.
 */
function heldTogether(place: PlaceRequest): boolean {
  const own = place.placement.group?.name;
  return (place.placement.affinity ?? []).some((t) => t.mode === 'required' && t.topologyKey === undefined && t.group === own);
}

/** The failure-domain labels a batch's placement holds hard rules over (a member keeps its domain on each). */
function domainKeys(place: PlaceRequest): string[] {
  const p = place.placement;
  const keys = (p.affinity ?? []).flatMap((t) => (t.mode === 'required' && t.topologyKey !== undefined ? [t.topologyKey] : []));
  if (p.topologySpread !== undefined) keys.push(p.topologySpread.topologyKey);
  return keys;
}

/**
 * A new member's drive, moved on after its node's definitive refusal as a place's is: to the next of its candidates
 * (decided with the members before it reserved), the intent moved there by compare-and-set at attempt+1 (the node that
 * refused joins refusedBy), up to maxAttempts nodes; only then does the batch fail. Safe for the reason a place's move
 * is: the node that refused journaled the fence first (or never saw the request, or was asked at its fence and holds
 * nothing), so nothing of this member commits there afterwards; one allocation per member, and the rollback follows the
 * intent to its last node. The agents stay the authority on room and on the batch's maxPerNode, so a sibling's later
 * reservation on that candidate (not in its decision) is refused there rather than over-committed. A retry of the batch
 * follows pending members where they are (the candidates are this call's).
 */
async function driveMovingOn(d: PlaceBatchDeps, m: Member, first: StoredIntent, candidates: readonly string[]): Promise<Outcome> {
  const maxAttempts = d.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  let outcome = await drive(d, m, first, true);
  const queue = [...candidates];
  while (outcome.kind === 'refused' && NODE_REFUSALS.has(outcome.error.code) && outcome.placedOnce !== true) {
    const refused = outcome;
    const intent = refused.at.value;
    if (nodesAsked(intent) >= maxAttempts) return refused;
    let moved: StoredIntent | undefined;
    while (moved === undefined) {
      const next = queue.shift();
      if (next === undefined) return refused;
      if (next === intent.nodeId || intent.refusedBy.includes(next)) continue;
      const driven = await d.store.drive(refused.at, { nodeId: next });
      if (driven.ok) moved = driven.value;
      else if (driven.error.code === 'conflict') return { kind: 'raced' };
      else if (!isPerNodeQuota(driven.error)) return refused; // per-node quota: the next candidate
    }
    d.logger?.debug({ requestId: intent.requestId, from: intent.nodeId, to: moved.value.nodeId }, 'batch member refused; moved on');
    outcome = await drive(d, m, moved, true);
  }
  return outcome;
}

/** A retry: every member's intent must be this batch's; each is followed from where it stands. */
async function resume(
  d: PlaceBatchDeps,
  req: PlaceBatchRequest,
  members: readonly Member[],
  found: readonly (StoredIntent | null)[],
): Promise<Result<PlaceBatchReply> | Raced> {
  const ours = (m: Member, at: StoredIntent): boolean => {
    const b = at.value.batch;
    return b?.batchId === req.batchId && b.index === m.index && b.size === members.length && at.value.hash === m.hash;
  };
  // A member id with another request's intent first (the id was used before), then a member without one.
  const foreign = members.find((m) => {
    const at = found[m.index];
    return at !== null && at !== undefined && !ours(m, at);
  });
  const missing = members.find((m) => found[m.index] === null || found[m.index] === undefined);
  const wrong = foreign ?? missing;
  if (wrong !== undefined) {
    const requestId = wrong.place.request.requestId;
    return err(
      'conflict',
      wrong === foreign
        ? `request ${requestId} (member ${wrong.index}) was used for another place request or batch; use new request ids`
        : `batch ${req.batchId} was placed with other members (member ${wrong.index}, ${requestId}, has no intent); use a new batch id`,
      { batchId: req.batchId, memberIndex: wrong.index, requestId },
    );
  }
  const intents = found as StoredIntent[];
  if (intents.some((i) => marksBatchFailure(i.value))) {
    const cause = batchFailureCause(
      req.batchId,
      intents.map((i) => i.value),
    );
    return rollback(
      d,
      req,
      intents.map((at) => ({ kind: 'unknown', at, error: cause }) as const),
      cause,
    );
  }
  // A member the tenant (or its node) ended since the batch was placed: the batch is not whole any more, and the
  // members still placed are the tenant's to keep. Answered as a place's retry of a released placement is; nothing changes.
  const ended = intents.find((i) => i.value.state === 'released');
  if (ended !== undefined) {
    const { requestId, batch } = ended.value;
    return err('conflict', `batch ${req.batchId}: member ${batch?.index} (${requestId}) was placed and then released; use a new batch id`, {
      batchId: req.batchId,
      memberIndex: batch?.index,
      requestId,
      state: 'released',
    });
  }
  const outcomes = await Promise.all(
    members.map(async (m): Promise<Outcome> => {
      const at = intents[m.index] as StoredIntent;
      const intent = at.value;
      if (intent.state === 'placed' && intent.reply !== undefined) return { kind: 'placed', at, reply: intent.reply };
      // pending (failed and released were answered above)
      const driven = await d.store.drive(at);
      if (!driven.ok) return driven.error.code === 'conflict' ? { kind: 'raced' } : { kind: 'unknown', at, error: driven.error };
      return drive(d, m, driven.value, false);
    }),
  );
  return settle(d, req, members, outcomes);
}

/** One member's allocate at its intent's fence, classified as a place classifies it. */
async function drive(d: PlaceBatchDeps, m: Member, at: StoredIntent, untouched: boolean): Promise<Outcome> {
  const result = await d.flow.allocateOn(at.value.nodeId, m.place, at.value.attempt, untouched);
  if (result.ok) {
    const status = result.value.status;
    if (status === 'active' || status === 'reserved') return { kind: 'committed', at, allocation: result.value };
    return { kind: 'ended', at, allocation: result.value };
  }
  if (result.error.code === 'conflict' && result.error.details?.['reason'] === 'fenced') return { kind: 'raced' };
  if (classifyFailure(result.error) !== 'unknown') return { kind: 'refused', at, error: result.error };
  return askAtFence(d, at, result.error);
}

/**
 * A member whose allocate has no answer: its node is asked at the intent's fence (the reconciler's question, at once),
 * after whose answer no allocate of it at that fence or below commits there. Held: committed. Nothing: it never will
 * be, a definitive refusal (the batch rolls back now rather than stay partly placed). No answer again: unknown.
 */
async function askAtFence(d: PlaceBatchDeps, at: StoredIntent, error: AllotError): Promise<Outcome> {
  const { requestId, nodeId, attempt } = at.value;
  const opts = d.agentTimeoutMs === undefined ? { requestId } : { requestId, timeoutMs: d.agentTimeoutMs };
  const fenced = await d.agents.call(nodeId, 'fence', { requestId, fence: attempt }, opts);
  if (!fenced.ok) return { kind: 'unknown', at, error };
  const held = fenced.value.allocation;
  if (held !== null && (held.status === 'active' || held.status === 'reserved')) return { kind: 'committed', at, allocation: held };
  if (held !== null && held.status === 'releasing') return { kind: 'unknown', at, error };
  return {
    kind: 'refused',
    at,
    // Committed there and ended since (a preemption before this question): placed once, so not again on another node.
    ...(held === null ? {} : { placedOnce: true as const }),
    error: errorOf(error.code, `${error.message}; asked at its fence, node ${nodeId} holds nothing of it`, {
      ...error.details,
      fence: attempt,
    }),
  };
}

/** Every member's outcome known: the answer, a rollback, or `timeout` for a retry to finish. */
async function settle(
  d: PlaceBatchDeps,
  req: PlaceBatchRequest,
  members: readonly Member[],
  outcomes: readonly Outcome[],
): Promise<Result<PlaceBatchReply> | Raced> {
  // A member that was placed and has ended on its node since: the batch had been placed (only a retry meets this), so the
  // members still placed stay; that one's intent is released (quota back) and the answer is a place's for it.
  const endedAt = outcomes.findIndex((o) => o.kind === 'ended');
  if (endedAt >= 0) {
    const ended = outcomes[endedAt] as Extract<Outcome, { kind: 'ended' }>;
    const released = await d.store.released(ended.at, ended.allocation.expiresAt !== undefined ? 'expiry' : 'agent');
    if (!released.ok && released.error.code !== 'conflict') return released;
    for (const [i, o] of outcomes.entries())
      if (o.kind === 'committed') d.flow.answerPlaced((members[i] as Member).place, o.at, o.allocation);
    const { requestId, nodeId } = ended.at.value;
    return err(
      'conflict',
      `batch ${req.batchId}: member ${endedAt} (${requestId}) is ${ended.allocation.status} on node ${nodeId}; use a new batch id`,
      { batchId: req.batchId, memberIndex: endedAt, requestId, state: 'released', allocationId: ended.allocation.id },
    );
  }
  const refusedAt = outcomes.findIndex((o) => o.kind === 'refused');
  if (refusedAt >= 0) {
    const refused = outcomes[refusedAt] as Extract<Outcome, { kind: 'refused' }>;
    const nodeId = refused.at.value.nodeId;
    // A node's "no" (no room, cordoned, no answer at its fence) is the batch's insufficient_capacity: the same batch
    // again gets the same answer, so it must not read as worth retrying (timeout, unavailable). The agent's code stays.
    const code = NODE_REFUSALS.has(refused.error.code) ? 'insufficient_capacity' : refused.error.code;
    const cause = errorOf(
      code,
      `batch ${req.batchId}: member ${refusedAt} (${refused.at.value.requestId}) was refused by node ${nodeId}: ${refused.error.message}; the batch placed nothing`,
      {
        ...refused.error.details,
        batchId: req.batchId,
        memberIndex: refusedAt,
        requestId: refused.at.value.requestId,
        nodeId,
        nodeCode: refused.error.code,
        ...(refused.at.value.refusedBy.length === 0 ? {} : { refusedBy: [...refused.at.value.refusedBy, nodeId] }),
      },
    );
    return rollback(d, req, outcomes, cause);
  }
  // Committed members are placements now, whatever the others came to: answered and recorded as a place's.
  const replies: PlaceReply[] = [];
  for (const [i, o] of outcomes.entries()) {
    if (o.kind === 'placed') replies.push(o.reply);
    else if (o.kind === 'committed') {
      const answered = d.flow.answerPlaced((members[i] as Member).place, o.at, o.allocation);
      if (answered.ok) replies.push(answered.value);
    }
  }
  if (outcomes.some((o) => o.kind === 'raced')) return 'raced';
  const unknown = outcomes.findIndex((o) => o.kind === 'unknown');
  if (unknown >= 0) {
    const o = outcomes[unknown] as Extract<Outcome, { kind: 'unknown' }>;
    return err(
      'timeout',
      `batch ${req.batchId}: member ${unknown} (${o.at.value.requestId}) on node ${o.at.value.nodeId} has no answer yet (${o.error.message}); retry the batch with the same id`,
      { batchId: req.batchId, memberIndex: unknown, requestId: o.at.value.requestId, nodeId: o.at.value.nodeId },
    );
  }
  return ok({ batchId: req.batchId, placements: replies });
}

/**
 * The batch failed: the refused member's intent is failed with the batch's error first (the mark a retry, on any
 * coordinator, finds), then every other member still counting is undone at its fence: released on its node when it
 * holds it (idempotent release id), its intent released (cause `batch`) or, when its node holds nothing, failed; quota
 * back in the same writes. A node that does not answer leaves its member counted: the answer is then `unavailable`,
 * and a retry of the batch finishes the rollback.
 */
async function rollback(
  d: PlaceBatchDeps,
  req: PlaceBatchRequest,
  outcomes: readonly Outcome[],
  cause: AllotError,
): Promise<Result<never> | Raced> {
  const marked = outcomes.find((o) => o.kind === 'refused');
  if (marked !== undefined && marked.kind === 'refused' && marked.at.value.state === 'pending') {
    const failed = await d.store.failed(marked.at, cause);
    if (!failed.ok && failed.error.code !== 'conflict') return failed;
    if (!failed.ok) {
      // Another coordinator moved the refused member first. Failed: it marked the batch too, roll back with it. Anything
      // else: a retry drove it on at a higher fence (and may have answered the batch placed): follow it, undo nothing.
      const now = await d.store.get(marked.at.value.requestId);
      if (!now.ok) return now;
      if (now.value?.value.state !== 'failed') return 'raced';
    }
  }
  const undoing = outcomes.flatMap((o) => (o.kind === 'raced' || o === marked ? [] : [o.at]));
  const left = await rollBackMembers(d, req.batchId, undoing, cause);
  d.logger?.info({ batchId: req.batchId, code: cause.code, left }, 'batch failed; its members were rolled back');
  if (left.length > 0)
    return err(
      'unavailable',
      `${cause.message}; members ${left.join(', ')} are not released yet (their nodes did not answer): retry the batch to finish`,
      {
        ...cause.details,
        notReleased: left,
      },
    );
  return { ok: false, error: cause };
}

/**
 * Rolls back members of a failed batch (its flow's rollback, a retry's, a reconciler's: batch-settle.ts): each undone at
 * its fence, all at once. Answers the request ids whose nodes did not answer (still counted; a later retry or reconcile
 * round finishes them). Idempotent: several coordinators may roll back the same batch at once.
 */
export async function rollBackMembers(
  d: RollbackDeps,
  batchId: string,
  members: readonly StoredIntent[],
  cause: AllotError,
): Promise<string[]> {
  const left: string[] = [];
  await Promise.all(
    members.map(async (at) => {
      const undone = await undo(d, batchId, at, cause);
      if (!undone.ok) left.push(at.value.requestId);
    }),
  );
  return left;
}

/** How often one member's undo follows an intent that changed under it (another coordinator settling it) before giving up. */
const UNDO_ROUNDS = 4;

/**
 * Undoes one member: asked at its fence, released there when held, its intent ended. Re-reads it first, and again when
 * its write loses to another writer (a reconciler marking it placed meanwhile must not leave it placed).
 */
async function undo(d: RollbackDeps, batchId: string, seen: StoredIntent, cause: AllotError): Promise<Result<void>> {
  for (let round = 0; round < UNDO_ROUNDS; round++) {
    const undone = await undoOnce(d, batchId, seen.value.requestId, cause);
    if (undone !== 'raced') return undone;
  }
  return err('unavailable', `member ${seen.value.requestId} of batch ${batchId} keeps changing under its rollback`, {
    batchId,
    requestId: seen.value.requestId,
  });
}

async function undoOnce(d: RollbackDeps, batchId: string, requestId: string, cause: AllotError): Promise<Result<void> | Raced> {
  const read = await d.store.get(requestId);
  if (!read.ok) return read;
  const at = read.value;
  if (at === null || (at.value.state !== 'pending' && at.value.state !== 'placed')) return ok(undefined);
  const { nodeId, attempt } = at.value;
  const opts = d.agentTimeoutMs === undefined ? { requestId } : { requestId, timeoutMs: d.agentTimeoutMs };
  const fenced = await d.agents.call(nodeId, 'fence', { requestId, fence: attempt }, opts);
  if (!fenced.ok) return fenced;
  const held = fenced.value.allocation;
  if (held !== null && (held.status === 'active' || held.status === 'reserved' || held.status === 'releasing')) {
    const releaseId = rollbackId(batchId, requestId);
    const released = await d.agents.call(
      nodeId,
      'release',
      { requestId: releaseId, allocationRequestId: requestId, fence: fenced.value.fence, reason: `batch ${batchId} failed` },
      { ...opts, requestId: releaseId },
    );
    if (!released.ok) return released;
  }
  const written = held === null && at.value.state === 'pending' ? await d.store.failed(at, cause) : await d.store.released(at, 'batch');
  if (written.ok) return ok(undefined);
  return written.error.code === 'conflict' ? 'raced' : written;
}
