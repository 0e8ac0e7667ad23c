import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NatsConnectionConfigSchema } from '@allot/core';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer, tempDir, waitFor } from '../../../test/harness/index.ts';
import { generateTestPki, natsServerNkeyConfig, natsServerTlsConfig, TEST_NKEY } from '../../../test/harness/tls.ts';
import { connectNats, connectOptionsFrom, connectionCounters, NATS_AUTH_FAILED, NATS_TLS_FAILED } from './connect.ts';
import { silentLogger } from './logger.ts';

afterAll(cleanupAll);

describe('connectNats', () => {
  it('authenticates with user and password from the shared config', async () => {
    const server = await startNatsServer({ jetstream: false, extraConfig: 'authorization { user: "allot", password: "s3cret" }' });
    const good = await connectNats(NatsConnectionConfigSchema.parse({ servers: [server.url], user: 'allot', password: 's3cret' }), {
      name: 'test',
      logger: silentLogger,
    });
    expect(good.ok).toBe(true);
    if (good.ok) await good.value.close();
    const bad = await connectNats(NatsConnectionConfigSchema.parse({ servers: [server.url], user: 'allot', password: 'wrong' }), {
      name: 'test',
      logger: silentLogger,
    });
    expect(bad.ok || bad.error).toMatchObject({
      code: 'invalid_request',
      details: { reason: NATS_AUTH_FAILED, serverMessage: 'Authorization Violation', credential: 'user allot' },
    });
  });

  it('reconnects after the server restarts, counting it and calling onReconnect', async () => {
    const server = await startNatsServer({ jetstream: false });
    let hooks = 0;
    const before = connectionCounters.reconnects;
    const nc = await connectNats(NatsConnectionConfigSchema.parse({ servers: [server.url] }), {
      name: 'test',
      logger: silentLogger,
      onReconnect: () => void (hooks += 1),
    });
    if (!nc.ok) throw new Error(nc.error.message);
    await server.restart();
    await waitFor(() => hooks === 1, { timeoutMs: 20_000, message: 'onReconnect' });
    expect(connectionCounters.reconnects).toBe(before + 1);
    await nc.value.close();
  });

  it('says which file it cannot read', async () => {
    const r = await connectOptionsFrom(NatsConnectionConfigSchema.parse({ credsFile: '/nonexistent/allot.creds' }), 'x');
    expect(r.ok || r.error).toMatchObject({ code: 'invalid_request', details: { field: 'credsFile' } });
  });

  it('reads an nkey seed file and sets TLS files and handshakeFirst', async () => {
    const dir = await tempDir('nkey');
    const seedFile = join(dir, 'seed.nk');
    await writeFile(seedFile, 'SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4\n');
    const r = await connectOptionsFrom(
      NatsConnectionConfigSchema.parse({ nkeySeedFile: seedFile, tls: { caFile: '/ca.pem', handshakeFirst: true } }),
      'x',
    );
    if (!r.ok) throw new Error(r.error.message);
    expect(r.value.authenticator).toBeTypeOf('function');
    expect(r.value.tls).toEqual({ caFile: '/ca.pem', handshakeFirst: true });
    expect(r.value.maxReconnectAttempts).toBe(-1);
  });

  it('treats a tls:// server as TLS required, even without a tls block', async () => {
    const r = await connectOptionsFrom(NatsConnectionConfigSchema.parse({ servers: ['tls://n1:4222'] }), 'x');
    expect(r.ok && r.value.tls).toEqual({ handshakeFirst: false });
  });
});

describe('connectNats to a server that requires TLS with client certificates and nkey users', async () => {
  const pki = await generateTestPki();
  const dir = await tempDir('nkeys');
  const seedFile = join(dir, 'good.nk');
  const wrongSeedFile = join(dir, 'wrong.nk');
  await writeFile(seedFile, `${TEST_NKEY.seed}\n`);
  await writeFile(wrongSeedFile, `${TEST_NKEY.wrongSeed}\n`);
  const server = await startNatsServer({ jetstream: false, extraConfig: `${natsServerTlsConfig(pki)}\n${natsServerNkeyConfig()}` });
  const tls = { caFile: pki.caFile, certFile: pki.clientCert, keyFile: pki.clientKey };

  it('connects with the CA, the client certificate and the nkey seed file', async () => {
    const nc = await connectNats(NatsConnectionConfigSchema.parse({ servers: [server.url], nkeySeedFile: seedFile, tls }), {
      name: 'test',
      logger: silentLogger,
    });
    if (!nc.ok) throw new Error(nc.error.message);
    expect(nc.value.info?.tls_required).toBe(true);
    await nc.value.close();
  });

  it('stops on a key the server does not know: the server message and the seed file named, no retry', async () => {
    const r = await connectNats(NatsConnectionConfigSchema.parse({ servers: [server.url], nkeySeedFile: wrongSeedFile, tls }), {
      name: 'test',
      logger: silentLogger,
    });
    expect(r.ok || r.error).toMatchObject({
      code: 'invalid_request',
      details: { reason: NATS_AUTH_FAILED, serverMessage: 'Authorization Violation', credential: `nkeySeedFile ${wrongSeedFile}` },
    });
    expect(!r.ok && r.error.message).toContain(`(nkeySeedFile ${wrongSeedFile}): Authorization Violation`);
  });

  it('stops on a server certificate the configured CA did not sign, naming the CA file', async () => {
    const r = await connectNats(
      NatsConnectionConfigSchema.parse({ servers: [server.url], nkeySeedFile: seedFile, tls: { ...tls, caFile: pki.otherCaFile } }),
      { name: 'test', logger: silentLogger },
    );
    expect(r.ok || r.error).toMatchObject({ code: 'invalid_request', details: { reason: NATS_TLS_FAILED, caFile: pki.otherCaFile } });
  });
});
