import {
  COORDINATOR_QUEUE,
  COORDINATOR_SERVICE_NAME,
  isTenantVerb,
  SCHED_ENDPOINTS,
  schedSubject,
  SCHED_VERBS,
  tenantSubject,
  type SchedVerb,
} from '@allot/protocol';
import type { Result } from '@allot/core';
import { connectNats, endpoint, serveService, silentLogger, type ServedService } from '@allot/nats';
import type { NatsConnection } from '@nats-io/transport-node';
import type { z } from 'zod';

type Handlers = { [V in SchedVerb]?: (request: z.output<(typeof SCHED_ENDPOINTS)[V]['request']>) => Result<unknown> };

/**
 * In-process scheduler endpoints on a real NATS server, for testing the CLI before (and apart from) the coordinator.
 * Only the verbs given are served (others get no responders, as with no coordinator); every request is recorded.
 */
export async function serveFakeScheduler(
  url: string,
  handlers: Handlers,
): Promise<{ requests: { verb: SchedVerb; request: unknown }[]; stop(): Promise<void> }> {
  const connected = await connectNats({ servers: [url], requestTimeoutMs: 5000 }, { name: 'fake-scheduler', logger: silentLogger });
  if (!connected.ok) throw new Error(connected.error.message);
  const nc: NatsConnection = connected.value;
  const requests: { verb: SchedVerb; request: unknown }[] = [];
  const endpoints = SCHED_VERBS.filter((verb) => handlers[verb] !== undefined).map((verb) =>
    endpoint({
      name: verb.replace('.', '-'),
      subject: isTenantVerb(verb) ? tenantSubject('*', verb) : schedSubject(verb),
      requestSchema: SCHED_ENDPOINTS[verb].request,
      handler: (request: unknown) => {
        requests.push({ verb, request });
        const handle = handlers[verb] as (r: unknown) => Result<unknown>;
        return Promise.resolve(handle(request));
      },
    }),
  );
  const served = await serveService(nc, {
    name: COORDINATOR_SERVICE_NAME,
    version: '0.0.0',
    queue: COORDINATOR_QUEUE,
    endpoints,
    logger: silentLogger,
  });
  if (!served.ok) throw new Error(served.error.message);
  const service: ServedService = served.value;
  return {
    requests,
    stop: async () => {
      await service.stop();
      await nc.close();
    },
  };
}
