import { AGENT_ENDPOINTS, agentSubject, HEADERS, type AgentVerb } from '@allot/protocol';
import type { Result } from '@allot/core';
import { requestTyped } from '@allot/nats';
import type { z } from 'zod';
import type { NatsConnection } from './nats-deps.ts';

type ReplyOf<V extends AgentVerb> = z.output<(typeof AGENT_ENDPOINTS)[V]['reply']>;
type RequestOf<V extends AgentVerb> = z.input<(typeof AGENT_ENDPOINTS)[V]['request']>;

/** Calls one agent's endpoints (allot.agent.<nodeId>.<verb>); trace context travels in the headers. */
export class AgentClient {
  readonly #nc: NatsConnection;
  readonly #timeoutMs: number;

  constructor(nc: NatsConnection, timeoutMs: number) {
    this.#nc = nc;
    this.#timeoutMs = timeoutMs;
  }

  call<V extends AgentVerb>(
    nodeId: string,
    verb: V,
    request: RequestOf<V>,
    opts: { timeoutMs?: number; requestId?: string } = {},
  ): Promise<Result<ReplyOf<V>>> {
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    const headers = opts.requestId === undefined ? undefined : { [HEADERS.requestId]: opts.requestId };
    return requestTyped(
      this.#nc,
      agentSubject(nodeId, verb),
      request,
      AGENT_ENDPOINTS[verb].reply,
      headers === undefined ? { timeoutMs } : { timeoutMs, headers },
    ) as Promise<Result<ReplyOf<V>>>;
  }
}

/** What the place flow, the reconciler and the sweep need of the agents (AgentClient over NATS; fakes and the simulator in process). */
export type AgentCaller = Pick<AgentClient, 'call'>;

/**
 * How a failed allocate is handled by the place flow:
 * - refused: a definitive no: the agent answered insufficient_capacity or unavailable (cordoned, stopping), or nobody
 *   serves the node (no responders: the request reached no one). The placement may move to another node.
 * - unknown: no answer in time, a dropped connection, a garbled reply: the agent may have committed, so the placement
 *   must NOT move; ask the same node again (same request id) or answer timeout.
 * - final: the agent answered an error that another node would answer too (invalid_request, conflict): pass it on.
 */
export type FailureKind = 'refused' | 'unknown' | 'final';

/** requestTyped's answer when the request reached no subscriber at all (the node's agent is not connected). */
export function isNoResponders(error: { code: string; message: string }): boolean {
  return error.code === 'unavailable' && error.message.startsWith('no responders on ');
}

/** The FailureKind of an allocate's error. */
export function classifyFailure(error: { code: string; message: string }): FailureKind {
  switch (error.code) {
    case 'insufficient_capacity':
      return 'refused';
    case 'unavailable':
      // requestTyped's own wording for a connection that failed under the request: the outcome is unknown.
      return /^request to \S+ failed/.test(error.message) ? 'unknown' : 'refused';
    case 'timeout':
    case 'internal':
      return 'unknown';
    default:
      return 'final';
  }
}
