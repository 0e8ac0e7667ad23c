import { readFile } from 'node:fs/promises';
import { err, ok, type NatsConnectionConfig, type Result } from '@allot/core';
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type NatsConnection,
  type NodeConnectionOptions,
} from '@nats-io/transport-node';
import type { NatsLogger } from './logger.ts';

/** Pause between reconnect attempts to one server; with jitter so a restarted server is not hit by every host at once. */
export const RECONNECT_TIME_WAIT_MS = 1_000;
export const RECONNECT_JITTER_MS = 500;

/** Reconnects counted since this process started, over all connections: for metrics. */
export const connectionCounters = { reconnects: 0, disconnects: 0 };

export type ConnectOptions = {
  /** Connection name shown by the server (config.name wins when set). */
  name: string;
  logger: NatsLogger;
  /** Called after every reconnect (the agent republishes its state there). Errors are logged, never thrown. */
  onReconnect?: () => void | Promise<void>;
};

/**
 * Turns the shared connection config into nats.js options: one authenticator at most (the schema enforces it), files
 * read now so a missing key is a clear error at start-up, and reconnecting forever.
 */
export async function connectOptionsFrom(config: NatsConnectionConfig, name: string): Promise<Result<NodeConnectionOptions>> {
  let authenticator: Authenticator | undefined;
  try {
    if (config.user !== undefined || config.password !== undefined) authenticator = usernamePasswordAuthenticator(config.user ?? '', config.password ?? '');
    else if (config.token !== undefined) authenticator = tokenAuthenticator(config.token);
    else if (config.nkeySeed !== undefined) authenticator = nkeyAuthenticator(new TextEncoder().encode(config.nkeySeed.trim()));
    else if (config.nkeySeedFile !== undefined) authenticator = nkeyAuthenticator(new TextEncoder().encode((await readFile(config.nkeySeedFile, 'utf8')).trim()));
    else if (config.credsFile !== undefined) authenticator = credsAuthenticator(await readFile(config.credsFile));
  } catch (e) {
    const field = config.nkeySeedFile !== undefined ? 'nkeySeedFile' : 'credsFile';
    return err('invalid_request', `${field}: cannot read ${String(config[field])}: ${(e as Error).message}`, { field });
  }
  const options: NodeConnectionOptions = {
    servers: config.servers,
    name: config.name ?? name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: RECONNECT_TIME_WAIT_MS,
    reconnectJitter: RECONNECT_JITTER_MS,
    // nats.js otherwise captures a stack (an Error) per request and per timer to say what timed out: a fifth of a busy
    // process's CPU in our profiles. Our failures are typed values naming the subject, so the stacks add nothing.
    noAsyncTraces: true,
  };
  if (authenticator) options.authenticator = authenticator;
  if (config.tls) {
    const tls: NonNullable<NodeConnectionOptions['tls']> = { handshakeFirst: config.tls.handshakeFirst };
    if (config.tls.caFile !== undefined) tls.caFile = config.tls.caFile;
    if (config.tls.certFile !== undefined) tls.certFile = config.tls.certFile;
    if (config.tls.keyFile !== undefined) tls.keyFile = config.tls.keyFile;
    options.tls = tls;
  }
  return ok(options);
}

/**
 * Connects (the first connection must succeed: a process that cannot reach NATS at start-up says so), then watches the
 * connection's status for as long as it lives: disconnects and reconnects are logged and counted, and onReconnect runs
 * after each reconnect.
 */
export async function connectNats(config: NatsConnectionConfig, opts: ConnectOptions): Promise<Result<NatsConnection>> {
  const options = await connectOptionsFrom(config, opts.name);
  if (!options.ok) return options;
  let nc: NatsConnection;
  try {
    nc = await connect(options.value);
  } catch (e) {
    return err('unavailable', `cannot connect to NATS at ${config.servers.join(', ')}: ${(e as Error).message}`, { servers: config.servers });
  }
  void watchStatus(nc, opts);
  opts.logger.info({ server: nc.getServer(), name: options.value.name }, 'connected to NATS');
  return ok(nc);
}

async function watchStatus(nc: NatsConnection, opts: ConnectOptions): Promise<void> {
  const { logger } = opts;
  for await (const status of nc.status()) {
    switch (status.type) {
      case 'disconnect':
        connectionCounters.disconnects += 1;
        logger.warn({ server: status.server }, 'disconnected from NATS');
        break;
      case 'reconnect':
        connectionCounters.reconnects += 1;
        logger.info({ server: status.server, reconnects: connectionCounters.reconnects }, 'reconnected to NATS');
        // Not awaited: a slow hook must not hold up the status events behind it.
        if (opts.onReconnect) runHook(opts.onReconnect, logger);
        break;
      case 'error':
        logger.error({ err: status.error }, 'NATS connection error');
        break;
      case 'ldm':
        logger.warn({ server: status.server }, 'NATS server entering lame duck mode');
        break;
      case 'slowConsumer':
        logger.warn({ pending: status.pending }, 'slow consumer');
        break;
      default:
        break;
    }
  }
}

function runHook(hook: () => void | Promise<void>, logger: NatsLogger): void {
  Promise.resolve()
    .then(hook)
    .catch((e: unknown) => logger.error({ err: e }, 'onReconnect hook failed'));
}
