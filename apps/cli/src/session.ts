import { err, type AllotError, type NatsConnectionConfig, type Result } from '@allot/core';
import { schedSubjectFor, SCHED_ENDPOINTS, type SchedVerb } from '@allot/protocol';
import { connectNats, requestTyped, silentLogger } from '@allot/nats';
import type { NatsConnection } from '@nats-io/transport-node';
import type { z } from 'zod';

export type SchedReply<V extends SchedVerb> = z.output<(typeof SCHED_ENDPOINTS)[V]['reply']>;

/** One CLI invocation's link to allot: a NATS connection and typed calls to the coordinators. */
export interface Session {
  readonly nc: NatsConnection;
  /** A scheduler request; the reply is validated against the contract. Never throws. */
  call<V extends SchedVerb>(verb: V, payload: unknown): Promise<Result<SchedReply<V>>>;
  close(): Promise<void>;
}

/** Connects; a NATS that cannot be reached is `unavailable` (exit 3). */
export async function openSession(config: NatsConnectionConfig): Promise<Result<Session>> {
  const connected = await connectNats(config, { name: 'allot-cli', logger: silentLogger });
  if (!connected.ok) return connected;
  const nc = connected.value;
  return {
    ok: true,
    value: {
      nc,
      call: async (verb, payload) => {
        // Tenant verbs go to allot.sched.<tenant>.<verb>, the tenant named in the request.
        const subject = schedSubjectFor(verb, payload);
        if (subject === undefined) return err('invalid_request', `${verb}: the request names no tenant`, { field: 'tenantId' });
        const reply = await requestTyped(nc, subject, payload, SCHED_ENDPOINTS[verb].reply, { timeoutMs: config.requestTimeoutMs });
        if (!reply.ok) return { ok: false, error: explain(reply.error) };
        return reply as Result<never>;
      },
      close: async () => {
        await nc.close().catch(() => undefined);
      },
    },
  };
}

/** "no responders" means no coordinator is running: say it in the operator's words. */
function explain(error: AllotError): AllotError {
  if (error.code === 'unavailable' && /no responders/.test(error.message)) {
    return { ...error, message: `${error.message}: no coordinator is running (start one, or a local cluster with 'allot cluster')` };
  }
  return error;
}
