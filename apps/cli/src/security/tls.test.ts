import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCa, ensureLeaf } from './tls.ts';

const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'allot-tls-test-'));
  await mkdir(join(dir, 'ca'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Whether openssl accepts `cert`, signed by `ca`, for the purpose (sslserver: a TLS server; sslclient: a TLS client). */
async function verifies(ca: string, cert: string, purpose: 'sslserver' | 'sslclient'): Promise<boolean> {
  try {
    await run('openssl', ['verify', '-CAfile', ca, '-purpose', purpose, cert]);
    return true;
  } catch {
    return false;
  }
}

describe('deployment certificates', () => {
  it('a server certificate also serves as the client side of a route, so the servers of a cluster can secure their routes with it', async () => {
    const ca = await ensureCa(join(dir, 'ca'), 'test');
    expect(ca.ok).toBe(true);
    if (!ca.ok) return;
    const server = await ensureLeaf({
      ca: ca.value,
      commonName: 'allot nats-server',
      usage: 'server',
      hosts: ['n1', '127.0.0.1'],
      base: join(dir, 'server'),
    });
    expect(server.ok).toBe(true);
    if (!server.ok) return;
    // nats-server dials a route with its cluster certificate and verifies the peer's as a client certificate.
    expect(await verifies(ca.value.cert, server.value.cert, 'sslserver')).toBe(true);
    expect(await verifies(ca.value.cert, server.value.cert, 'sslclient')).toBe(true);
  });

  it('an identity certificate is a client certificate only: it cannot pose as a server', async () => {
    const ca = await ensureCa(join(dir, 'ca'), 'test');
    if (!ca.ok) throw new Error(ca.error.message);
    const client = await ensureLeaf({ ca: ca.value, commonName: 'allot scheduler t0', usage: 'client', base: join(dir, 'client') });
    if (!client.ok) throw new Error(client.error.message);
    expect(await verifies(ca.value.cert, client.value.cert, 'sslclient')).toBe(true);
    expect(await verifies(ca.value.cert, client.value.cert, 'sslserver')).toBe(false);
  });
});
