import { AGENT_ENDPOINTS, agentSubject, type AgentVerb, type HostHealth, type HostLimits } from '@allot/protocol';
import { err, ok, type AllocationRequest, type AllotError, type Result } from '@allot/core';
import type { z } from 'zod';
import { parseAllocate, parseRelease, parseRequest, parsedAtTheEdge, type HostManager } from '@allot/managers';
import { endpoint, type EndpointSpec } from '@allot/nats';

/** What the endpoints need from the running agent besides the host manager. */
export interface EndpointContext {
  readonly nodeId: string;
  readonly host: HostManager;
  /** The usage snapshot as the stream would carry it now. */
  usage(): Promise<Result<unknown>>;
  hostHealth(): Promise<Result<HostHealth>>;
  /** A refused allocate or reserve goes to the events stream (refusals change no state, so nothing is journaled). */
  refused(request: AllocationRequest, error: AllotError): void;
  /** A cordon or uncordon was journaled: logged, so an operator on the host reads why (a decommission's refusal names itself). */
  cordonChanged?(cordoned: boolean, reason: string): void;
}

function limitsOf(byType: Awaited<ReturnType<HostManager['getLimits']>>): Result<HostLimits> {
  if (!byType.ok) return byType;
  const { memory, cpu } = byType.value;
  if (memory === undefined || cpu === undefined) return err('internal', 'host manager reports no memory or cpu limits');
  return ok({ memory, cpu });
}

/** The fence option of allocate and reserve (the coordinator's fencing epoch), when the message carries one. */
function fenceOf(message: { fence?: number | undefined }): { fence?: number } {
  return message.fence === undefined ? {} : { fence: message.fence };
}

/** allocate and reserve carry the coordinator's fence beside the request; the allocation keeps the request alone. */
function withoutFence<T extends { fence?: number | undefined }>(message: T): Omit<T, 'fence'> {
  const { fence, ...request } = message;
  void fence;
  return request;
}

/**
 * The agent's NATS endpoints, one per verb of AGENT_ENDPOINTS, on `allot.agent.<nodeId>.<verb>`. Each request is
 * parsed once, here at the edge: the framework validates it against the verb's schema (or the managers' faster
 * parser for the hot verbs), and the handler hands it, marked as parsed (parsedAtTheEdge), to the host manager's
 * ResourceManager methods, which check, commit durably, then answer.
 */
export function agentEndpoints(ctx: EndpointContext): EndpointSpec[] {
  const { host, nodeId } = ctx;
  type RequestOf<V extends AgentVerb> = z.output<(typeof AGENT_ENDPOINTS)[V]['request']>;
  // `parse`: the managers' parser, proven equal to the verb's schema by a property test (fast-parse.test.ts), for the
  // hot verbs.
  const on = <V extends AgentVerb>(
    verb: V,
    handler: (request: RequestOf<V>) => Promise<Result<unknown>>,
    parse?: (raw: unknown) => Result<RequestOf<V>>,
  ): EndpointSpec =>
    endpoint({
      name: verb.replace('.', '-'),
      subject: agentSubject(nodeId, verb),
      requestSchema: AGENT_ENDPOINTS[verb].request,
      handler: (request) => handler(request as never),
      ...(parse === undefined ? {} : { parse: parse as never }),
    });

  return [
    on(
      'allocate',
      async (request) => {
        const result = await host.allocate(parsedAtTheEdge(withoutFence(request)), fenceOf(request));
        if (!result.ok) ctx.refused(request, result.error);
        return result;
      },
      parseAllocate,
    ),
    on('reserve', async (request) => {
      const result = await host.reserve(parsedAtTheEdge(withoutFence(request)), fenceOf(request));
      if (!result.ok) ctx.refused(request, result.error);
      return result;
    }),
    on('release', (request) => host.release(parsedAtTheEdge(request)), parseRelease),
    on('activate', (request) => host.activateReservation(request.allocationId, request.requestId)),
    on('check', (request) => host.checkAvailability(parsedAtTheEdge(request)), parseRequest),
    on('usage', () => ctx.usage()),
    on('allocations', (request) =>
      host.pageAllocations({
        status: request.status === 'all' ? 'live' : request.status,
        limit: request.limit,
        ...(request.after === undefined ? {} : { after: request.after }),
        ...(request.tenantId === undefined ? {} : { tenantId: request.tenantId }),
        ...(request.requestId === undefined ? {} : { requestId: request.requestId }),
      }),
    ),
    on('fence', (request) => host.fence(request.requestId, request.fence)),
    on('resize', (request) => host.resizeParsed(request)),
    on('preempt', async (request) => {
      const result = await host.preemptParsed(withoutFence(request.request), request.victims, request.request.fence, request.graceMs);
      if (!result.ok) ctx.refused(request.request, result.error);
      return result;
    }),
    on('health', () => ctx.hostHealth()),
    on('limits.get', async () => limitsOf(await host.getLimits())),
    on('limits.update', async (request) => {
      const update = {
        ...(request.memory === undefined ? {} : { memory: request.memory }),
        ...(request.cpu === undefined ? {} : { cpu: request.cpu }),
      };
      if (Object.keys(update).length === 0)
        return err('invalid_request', 'memory: name the memory or cpu limits to update', { field: 'memory' });
      return limitsOf(await host.updateLimits(update, { force: request.force }));
    }),
    on('cordon', async (request) => {
      const done = await host.setCordon(true, request.reason ?? '');
      if (done.ok) ctx.cordonChanged?.(true, request.reason ?? '');
      return done.ok ? ctx.hostHealth() : done;
    }),
    on('uncordon', async (request) => {
      const done = await host.setCordon(false, request.reason ?? '');
      if (done.ok) ctx.cordonChanged?.(false, request.reason ?? '');
      return done.ok ? ctx.hostHealth() : done;
    }),
  ];
}
