import { NatsConnectionConfigSchema } from '@allot/core';
import { connectNats, ensureStreams } from '@allot/nats';
import pino from 'pino';
import { CoordinatorConfigSchema, type CoordinatorConfigInput } from '../config.ts';
import { startCoordinator, withoutAsyncTraces, type Coordinator } from '../coordinator.ts';
import { jetstream, jetstreamManager, type NatsConnection } from '../nats-deps.ts';
import { FakeAgents, type FakeAgentsOptions } from './fake-agents.ts';

/** Test and bench helpers: a connection, fake agents, coordinators on their own connections. */
export const quietLogger = pino({ level: process.env['ALLOT_TEST_LOG'] ?? 'silent' });

export async function connectTo(url: string, name: string): Promise<NatsConnection> {
  const nc = await connectNats(NatsConnectionConfigSchema.parse({ servers: [url] }), { name, logger: quietLogger });
  if (!nc.ok) throw new Error(nc.error.message);
  withoutAsyncTraces(nc.value);
  return nc.value;
}

/** The allot streams on a one-server test NATS (R1), made before fake agents publish into them. */
export async function ensureTestStreams(nc: NatsConnection): Promise<void> {
  const ensured = await ensureStreams(await jetstreamManager(nc), { replicas: 1 });
  if (!ensured.ok) throw new Error(ensured.error.message);
}

export async function startFakeAgents(
  nc: NatsConnection,
  nodes: Record<string, { memoryMiB: number; cores: number; labels?: Record<string, string> }>,
  opts: FakeAgentsOptions,
): Promise<FakeAgents> {
  const agents = new FakeAgents(nc, jetstream(nc), opts);
  for (const [id, spec] of Object.entries(nodes)) agents.add(id, spec);
  return agents;
}

/** A coordinator on its own connection (so killing it is closing that connection). */
export async function startTestCoordinator(
  url: string,
  config: CoordinatorConfigInput = {},
): Promise<{ coordinator: Coordinator; nc: NatsConnection }> {
  const nc = await connectTo(url, `coordinator-${config.coordinatorId ?? 'c'}`);
  const started = await startCoordinator(nc, CoordinatorConfigSchema.parse({ ...config, nats: { servers: [url] } }), {
    logger: quietLogger,
  });
  if (!started.ok) throw new Error(started.error.message);
  return { coordinator: started.value, nc };
}
