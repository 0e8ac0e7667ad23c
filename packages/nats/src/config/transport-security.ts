import type { NatsConnectionConfig } from '@allot/core';

/** Whether the connection authenticates: any one of the ways the schema allows. */
export function hasCredentials(nats: NatsConnectionConfig): boolean {
  return (
    nats.credsFile !== undefined ||
    nats.nkeySeedFile !== undefined ||
    nats.nkeySeed !== undefined ||
    nats.token !== undefined ||
    nats.user !== undefined
  );
}

/** Whether the connection must be TLS: a `tls` block (even empty), or only tls:// servers. */
export function usesTls(nats: NatsConnectionConfig): boolean {
  return nats.tls !== undefined || nats.servers.every((url) => url.startsWith('tls://'));
}

/**
 * In production a process connects with credentials over TLS, or says out loud that it does not (`insecure: true`).
 * Returns why the configuration falls short, in words, or undefined when it is fine.
 */
export function transportSecurityProblem(nats: NatsConnectionConfig, production: boolean): string | undefined {
  if (!production || nats.insecure === true) return undefined;
  const missing: string[] = [];
  if (!hasCredentials(nats))
    missing.push('no credentials (nats.credsFile or nats.nkeySeedFile; ALLOT_NATS_CREDS or ALLOT_NATS_NKEY_SEED_FILE)');
  if (!usesTls(nats)) missing.push('no TLS (nats.tls.caFile, certFile, keyFile; ALLOT_NATS_TLS_CA, _CERT, _KEY)');
  if (missing.length === 0) return undefined;
  return `in production, NATS needs credentials and TLS: ${missing.join(' and ')}; set nats.insecure: true (ALLOT_NATS_INSECURE=true) to start without them`;
}
