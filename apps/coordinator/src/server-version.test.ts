import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, tempDir, waitFor, portAccepts } from '../../../test/harness/index.ts';
import { CoordinatorConfigSchema } from './config.ts';
import { startCoordinator } from './coordinator.ts';

/** Debian bookworm's nats-server (2.9.10): JetStream, but no atomic batches and no per-message TTLs. */
const OLD_SERVER = '/usr/sbin/nats-server';
const stops: (() => void)[] = [];

afterAll(() => {
  for (const stop of stops) stop();
});

describe.skipIf(!existsSync(OLD_SERVER))('a coordinator on a nats-server older than 2.12', () => {
  it('refuses to start, naming the version found and the one needed', async () => {
    const port = await freePort();
    const dir = await tempDir('old-nats');
    const child = spawn(OLD_SERVER, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: 'ignore' });
    stops.push(() => child.kill('SIGKILL'));
    await waitFor(() => portAccepts(port), { message: 'the old nats-server to listen' });
    const nc = await connect({ servers: `127.0.0.1:${port}` });
    const started = await startCoordinator(nc, CoordinatorConfigSchema.parse({}), { logger: pino({ level: 'silent' }) });
    expect(started).toMatchObject({
      ok: false,
      error: {
        code: 'internal',
        message: expect.stringMatching(/^nats-server 2\.9\.10 is too old: the coordinator needs 2\.12\.0 or later/),
      },
    });
    await nc.close();
  });
});
