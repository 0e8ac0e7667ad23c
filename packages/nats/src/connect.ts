import { readFile } from 'node:fs/promises';
import { err, errorOf, ok, type AllotError, type NatsConnectionConfig, type Result } from '@allot/core';
import { inboxPrefixOf } from '@allot/protocol';
import {
  AuthorizationError,
  connect,
  credsAuthenticator,
  UserAuthenticationExpiredError,
  nkeyAuthenticator,
  nkeys,
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

/** details.reason when the server refused the credentials: retrying cannot help, the process stops (exit 2). */
export const NATS_AUTH_FAILED = 'nats_auth_failed';
/** details.reason when the server's certificate failed verification against the configured CA: stop, like auth. */
export const NATS_TLS_FAILED = 'nats_tls_failed';
/** details.reason when a credential or TLS file named in the config cannot be read. */
export const NATS_CONFIG_UNREADABLE = 'nats_config_unreadable';

/** Node's codes for a server certificate that does not verify (not a network fault: the same answer every time). */
const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Reconnects counted since this process started, over all connections: for metrics. */
export const connectionCounters = { reconnects: 0, disconnects: 0 };

export type ConnectOptions = {
  /** Connection name shown by the server (config.name wins when set). */
  name: string;
  logger: NatsLogger;
  /** Called after every reconnect (the agent republishes its state there). Errors are logged, never thrown. */
  onReconnect?: () => void | Promise<void>;
  /**
   * Called once if the connection ends for good without close() or drain(): above all a credential revoked while
   * connected (the server drops the client on a config reload, and nats.js gives up at the first authorization error
   * of the reconnect). The error is the one a refused start-up gives (reason NATS_AUTH_FAILED), so the caller can stop
   * the same way; anything else is unavailable.
   */
  onClosed?: (error: AllotError) => void;
};

/**
 * Turns the shared connection config into nats.js options: one authenticator at most (the schema enforces it), files
 * read now so a missing key is a clear error at start-up, and reconnecting forever.
 */
export async function connectOptionsFrom(config: NatsConnectionConfig, name: string): Promise<Result<NodeConnectionOptions>> {
  let authenticator: Authenticator | undefined;
  let inboxPrefix: string | undefined;
  /** An nkey identity gets its private reply inbox, `_INBOX_<public key>` (the server lets only it subscribe there). */
  const nkeyIdentity = (seed: string) => {
    const encoded = new TextEncoder().encode(seed.trim());
    inboxPrefix = inboxPrefixOf(nkeys.fromSeed(encoded).getPublicKey());
    return nkeyAuthenticator(encoded);
  };
  try {
    if (config.user !== undefined || config.password !== undefined)
      authenticator = usernamePasswordAuthenticator(config.user ?? '', config.password ?? '');
    else if (config.token !== undefined) authenticator = tokenAuthenticator(config.token);
    else if (config.nkeySeed !== undefined) authenticator = nkeyIdentity(config.nkeySeed);
    else if (config.nkeySeedFile !== undefined) authenticator = nkeyIdentity(await readFile(config.nkeySeedFile, 'utf8'));
    else if (config.credsFile !== undefined) authenticator = credsAuthenticator(await readFile(config.credsFile));
  } catch (e) {
    const field = config.nkeySeedFile !== undefined ? 'nkeySeedFile' : 'credsFile';
    return err('invalid_request', `${field}: cannot read ${String(config[field])}: ${(e as Error).message}`, {
      field,
      reason: NATS_CONFIG_UNREADABLE,
    });
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
  if (inboxPrefix !== undefined) options.inboxPrefix = inboxPrefix;
  // nats.js dials a tls:// URL in plain text unless TLS is asked for: the scheme alone would promise what it does not do.
  if (config.tls === undefined && config.servers.some((url) => url.startsWith('tls://'))) options.tls = { handshakeFirst: false };
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
    return connectFailure(config, e);
  }
  void watchStatus(nc, opts);
  void nc.closed().then((e) => {
    // close() and drain() resolve without an error: only an ending the process did not ask for is reported.
    if (e instanceof Error && opts.onClosed !== undefined) opts.onClosed(lostConnection(config, e, publicKeyOf(options.value.inboxPrefix)));
  });
  opts.logger.info({ server: nc.getServer(), name: options.value.name }, 'connected to NATS');
  return ok(nc);
}

/** The nkey identity's public key, from the private inbox prefix connectOptionsFrom derived from it. */
function publicKeyOf(inboxPrefix: string | undefined): string | undefined {
  const keyed = inboxPrefixOf('');
  return inboxPrefix?.startsWith(keyed) === true ? inboxPrefix.slice(keyed.length) : undefined;
}

/** Why a connection that was up ended for good: a refused credential names the identity, as at start-up. */
function lostConnection(config: NatsConnectionConfig, e: Error, publicKey: string | undefined): AllotError {
  const servers = config.servers.join(', ');
  if (e instanceof AuthorizationError || e instanceof UserAuthenticationExpiredError) {
    const credential = credentialOf(config);
    const identity = publicKey === undefined ? '' : `, identity ${publicKey}`;
    const message = `NATS at ${servers} no longer accepts the credentials (${credential}${identity}): ${e.message}; the user was removed or changed in the server's configuration since this process connected`;
    return errorOf('invalid_request', message, {
      reason: NATS_AUTH_FAILED,
      serverMessage: e.message,
      credential,
      servers: config.servers,
      ...(publicKey === undefined ? {} : { publicKey }),
    });
  }
  return errorOf('unavailable', `the connection to NATS at ${servers} ended: ${e.message}`, { servers: config.servers });
}

/** Which credential this config presents, in words for an error: the file, never the secret. */
function credentialOf(config: NatsConnectionConfig): string {
  if (config.credsFile !== undefined) return `credsFile ${config.credsFile}`;
  if (config.nkeySeedFile !== undefined) return `nkeySeedFile ${config.nkeySeedFile}`;
  if (config.nkeySeed !== undefined) return 'nkeySeed (inline)';
  if (config.token !== undefined) return 'token';
  if (config.user !== undefined) return `user ${config.user}`;
  return 'no credentials';
}

/**
 * A refused credential or a server certificate that does not verify is invalid_request (the caller stops: the same
 * files get the same answer); anything else is unavailable (the caller retries: the server may come up later).
 */
function connectFailure(config: NatsConnectionConfig, e: unknown): Result<never> {
  const servers = config.servers.join(', ');
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof AuthorizationError || e instanceof UserAuthenticationExpiredError) {
    const credential = credentialOf(config);
    return err('invalid_request', `NATS at ${servers} refused the credentials (${credential}): ${message}`, {
      reason: NATS_AUTH_FAILED,
      serverMessage: message,
      credential,
      servers: config.servers,
    });
  }
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && TLS_VERIFY_CODES.has(code)) {
    const caFile = config.tls?.caFile ?? '(system CAs)';
    return err('invalid_request', `the TLS certificate of NATS at ${servers} does not verify against ${caFile}: ${message}`, {
      reason: NATS_TLS_FAILED,
      tlsCode: code,
      caFile,
      servers: config.servers,
    });
  }
  return err('unavailable', `cannot connect to NATS at ${servers}: ${message}`, { servers: config.servers });
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
