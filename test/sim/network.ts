import { AGENT_ENDPOINTS, agentSubject, decode, encode, replySchema, type AgentVerb } from '@allot/protocol';
import { err, type Result } from '@allot/core';
import type { z } from 'zod';
import type { SimAgent } from './agent.ts';
import type { Faults } from './faults.ts';
import type { Scheduler } from './scheduler.ts';

type ReplyOf<V extends AgentVerb> = z.output<(typeof AGENT_ENDPOINTS)[V]['reply']>;
type RequestOf<V extends AgentVerb> = z.input<(typeof AGENT_ENDPOINTS)[V]['request']>;

const envelopes = new Map<AgentVerb, ReturnType<typeof replySchema>>();
function envelopeOf(verb: AgentVerb): ReturnType<typeof replySchema> {
  let envelope = envelopes.get(verb);
  if (envelope === undefined) envelopes.set(verb, (envelope = replySchema(AGENT_ENDPOINTS[verb].reply)));
  return envelope;
}

/**
 * Request/reply between coordinators and agents, the shape of the coordinator's AgentClient (`call(nodeId, verb,
 * request, opts)`), with NATS's answers: a reply, `timeout` when none came in time (the agent may still commit), or
 * `unavailable` "no responders on <subject>" when no agent serves the node. Bytes travel msgpack-encoded both ways, as
 * on the wire, so no object is shared between processes. The scheduler delays every hop (reordering them), and may
 * lose a request or a reply, or deliver a request twice.
 */
export class SimNetwork {
  readonly #sched: Scheduler;
  readonly #agents: ReadonlyMap<string, SimAgent>;
  readonly #faults: () => Faults;
  readonly #timeoutMs: number;
  #sent = 0;
  /**
   * A copy of a request held back (a retransmission stuck in a queue), delivered this many ms later when it returns a
   * number; set by a run's own fault streams (`--lifecycle`: late copies of resizes), so other runs replay as before.
   */
  lateCopy: ((verb: AgentVerb, request: unknown) => number | undefined) | undefined;

  constructor(options: { sched: Scheduler; agents: ReadonlyMap<string, SimAgent>; faults: () => Faults; timeoutMs: number }) {
    this.#sched = options.sched;
    this.#agents = options.agents;
    this.#faults = options.faults;
    this.#timeoutMs = options.timeoutMs;
  }

  get sent(): number {
    return this.#sent;
  }

  #delay(): number {
    return this.#sched.int(0, this.#faults().maxDelayMs);
  }

  call<V extends AgentVerb>(
    nodeId: string,
    verb: V,
    request: RequestOf<V>,
    opts: { timeoutMs?: number; requestId?: string; from?: string } = {},
  ): Promise<Result<ReplyOf<V>>> {
    const subject = agentSubject(nodeId, verb);
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    const id = ++this.#sent;
    const tag = `msg ${id} ${opts.from ?? '?'}->${nodeId}.${verb}`;
    const payload = encode(request);
    return new Promise((resolve) => {
      let settled = false;
      const settle = (result: Result<ReplyOf<V>>, why: string): void => {
        if (settled) return;
        settled = true;
        timer.cancel();
        this.#sched.trace(`${tag} ${why}`);
        resolve(result);
      };
      const timer = this.#sched.after(timeoutMs, `${tag} timeout`, () =>
        settle(err('timeout', `no reply from ${subject} within ${timeoutMs} ms`, { subject, timeoutMs }), 'timed out'),
      );
      const faults = this.#faults();
      this.#sched.trace(`${tag} sent ${summary(request)}`);
      if (this.#sched.chance(faults.dropP)) {
        this.#sched.trace(`${tag} request lost`);
        return;
      }
      let firstDelivered = false;
      const deliver = (copy: number): void => {
        // A message that met no responders went nowhere: NATS keeps no copy to deliver later (a "duplicate" is a copy
        // of a message that was delivered, as a reconnecting client's resend of it).
        if (copy > 1 && !firstDelivered) return;
        const agent = this.#agents.get(nodeId);
        if (agent === undefined || !agent.up) {
          // The server knows nobody serves the subject: the caller hears it at once (the first copy only).
          if (copy === 1)
            this.#sched.after(this.#delay(), `${tag} no responders`, () =>
              settle(err('unavailable', `no responders on ${subject}`, { subject }), 'no responders'),
            );
          return;
        }
        if (copy === 1) firstDelivered = true;
        this.#sched.trace(`${tag} delivered${copy > 1 ? ' (duplicate)' : ''}`);
        void agent.handle(verb, payload).then((reply) => {
          if (reply === undefined) return;
          if (this.#sched.chance(this.#faults().dropP)) {
            this.#sched.trace(`${tag} reply lost`);
            return;
          }
          this.#sched.after(this.#delay(), `${tag} reply`, () => {
            const decoded = decode(envelopeOf(verb), reply, Number.POSITIVE_INFINITY);
            const result = decoded.ok
              ? (decoded.value as Result<ReplyOf<V>>)
              : err<ReplyOf<V>>('internal', `malformed reply from ${subject}: ${decoded.error.message}`);
            settle(
              result,
              `replied ${result.ok ? 'ok' : `${result.error.code} (${result.error.message.slice(0, 160)})`}${copy > 1 ? ' (to the duplicate)' : ''}`,
            );
          });
        });
      };
      this.#sched.after(this.#delay(), `${tag} deliver`, () => deliver(1));
      if (this.#sched.chance(faults.duplicateP)) this.#sched.after(this.#delay() + this.#delay(), `${tag} deliver again`, () => deliver(2));
      const lateMs = this.lateCopy?.(verb, request);
      if (lateMs !== undefined) this.#sched.after(lateMs, `${tag} deliver a late copy`, () => deliver(3));
    });
  }
}

/** A short description of a request for the trace. */
function summary(request: unknown): string {
  if (typeof request !== 'object' || request === null) return '';
  const r = request as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of ['requestId', 'allocationId', 'allocationRequestId', 'fence', 'tenantId'])
    if (r[key] !== undefined) parts.push(`${key}=${String(r[key])}`);
  return parts.join(' ');
}
