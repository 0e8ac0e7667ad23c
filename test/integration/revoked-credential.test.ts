import { execFile } from 'node:child_process';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import type { NatsConnectionConfig } from '@allot/core';
import { connectNats, silentLogger } from '@allot/nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../apps/cli/src/cli.ts';
import { setupStorage } from '../../apps/cli/src/security/setup.ts';
import { recordingContext } from '../../apps/cli/src/testing/recording-context.ts';
import {
  cleanupAll,
  COORDINATOR_MAIN,
  isLogMsg,
  NATS_SERVER_BIN,
  spawnProcess,
  startAgent,
  startNatsServer,
  tempDir,
  type AgentHandle,
  type NatsServerHandle,
  type ProcessHandle,
} from '../harness/index.ts';

/*
 * A credential revoked while its process is connected: the deployment made by `allot security`, a real nats-server
 * that includes the generated users, real agent and coordinator processes. Revoking is what docs/security.md says:
 * delete the identity's directory, re-run `allot security` (the users are rewritten from the identities left) and
 * reload the server, which then disconnects the identity with an authorization violation. The process must stop like
 * a refused credential at start-up (exit 2, the identity named), not retry forever.
 */
let dir: string;
let server: NatsServerHandle;
let coordinator: ProcessHandle;
const agents = new Map<string, AgentHandle>();

async function security(...args: string[]): Promise<void> {
  const ctx = recordingContext();
  const code = await runCli(['security', ...args, '--dir', dir], ctx);
  if (code !== 0) throw new Error(`allot security ${args.join(' ')}: ${ctx.stderr.join('\n')}`);
}

async function connectionOf(role: string, name: string): Promise<NatsConnectionConfig> {
  const c = JSON.parse(await readFile(join(dir, 'identities', role, name, 'nats.json'), 'utf8')) as NatsConnectionConfig;
  return { ...c, servers: [server.url] };
}

/** As docs/security.md deploys a host: a copy of its identity's directory and of the CA certificate, on the host. */
async function installOnHost(role: string, name: string): Promise<NatsConnectionConfig> {
  const host = join(dir, '..', 'hosts', `${role}-${name}`);
  await cp(join(dir, 'identities', role, name), host, { recursive: true });
  await cp(join(dir, 'ca', 'ca.pem'), join(host, 'ca.pem'));
  return {
    servers: [server.url],
    requestTimeoutMs: 5_000,
    nkeySeedFile: join(host, 'nkey.seed'),
    tls: { caFile: join(host, 'ca.pem'), certFile: join(host, 'tls.pem'), keyFile: join(host, 'tls.key'), handshakeFirst: false },
  };
}

function envOf(c: NatsConnectionConfig): Record<string, string> {
  return {
    ALLOT_NATS_SERVERS: c.servers.join(','),
    ALLOT_NATS_NKEY_SEED_FILE: c.nkeySeedFile ?? '',
    ALLOT_NATS_TLS_CA: c.tls?.caFile ?? '',
    ALLOT_NATS_TLS_CERT: c.tls?.certFile ?? '',
    ALLOT_NATS_TLS_KEY: c.tls?.keyFile ?? '',
  };
}

/** Deletes an identity, rewrites the users with `allot security init` and reloads the server as an operator would. */
async function revoke(role: string, name: string): Promise<void> {
  await rm(join(dir, 'identities', role, name), { recursive: true });
  await security('init');
  await promisify(execFile)(NATS_SERVER_BIN, ['--signal', `reload=${String(server.pid)}`]);
}

async function publicKeyOf(role: string, name: string): Promise<string> {
  return (await readFile(join(dir, 'identities', role, name, 'nkey.pub'), 'utf8')).trim();
}

/** The process exits within `ms`, or undefined. */
async function exitWithin(p: ProcessHandle, ms: number) {
  return Promise.race([p.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms))]);
}

beforeAll(async () => {
  dir = join(await tempDir('revoke'), 'deploy');
  await security('init', '--node', 'a', '--node', 'b');
  // nats-server resolves an include against the directory of its config file (an absolute path is refused).
  const storeDir = await tempDir('revoke-nats');
  server = await startNatsServer({
    storeDir,
    extraConfig: `include ${JSON.stringify(relative(storeDir, join(dir, 'nats', 'allot-auth.conf')))}`,
  });
  const admin = await connectNats(await connectionOf('admin', 'admin'), { name: 'test-admin', logger: silentLogger });
  if (!admin.ok) throw new Error(admin.error.message);
  expect((await setupStorage(admin.value, 1)).ok).toBe(true);
  await admin.value.close();

  const file = join(dir, 'coordinator.json');
  await writeFile(file, JSON.stringify({ coordinatorId: 'c1', nats: await installOnHost('coordinator', 'coordinator') }));
  coordinator = spawnProcess({
    name: 'coordinator c1',
    script: COORDINATOR_MAIN,
    args: ['--config', file],
    env: { ALLOT_LOG_FORMAT: 'json', NODE_ENV: 'test' },
  });
  await coordinator.waitForLine(isLogMsg('coordinator ready'), 30_000);
  for (const nodeId of ['a', 'b']) {
    agents.set(
      nodeId,
      await startAgent({
        natsUrl: server.url,
        nodeId,
        stateDir: join(dir, `state-${nodeId}`),
        env: envOf(await installOnHost('agent', nodeId)),
      }),
    );
  }
}, 90_000);

afterAll(cleanupAll);

describe('a credential revoked while connected (allot security, nats-server --signal reload)', () => {
  it('the agent whose user is gone exits 2 naming its identity; the other agent keeps serving', async () => {
    const a = agents.get('a') as AgentHandle;
    const b = agents.get('b') as AgentHandle;
    const seedFile = join(dir, '..', 'hosts', 'agent-a', 'nkey.seed');
    const publicKey = await publicKeyOf('agent', 'a');
    await revoke('agent', 'a');
    const exit = await exitWithin(a, 20_000);
    expect(exit?.code, 'agent a still running 20 s after its user was removed').toBe(2);
    const stderr = a.stderr.join('\n');
    expect(stderr).toContain(`nkeySeedFile ${seedFile}`);
    expect(stderr).toContain(publicKey);
    expect(stderr).toMatch(/Authorization Violation/i);
    // The reload dropped no one else.
    expect(await exitWithin(b, 2_000)).toBeUndefined();
    expect(await exitWithin(coordinator, 1)).toBeUndefined();
  });

  it('the coordinator whose user is replaced exits 2 naming its identity', async () => {
    const publicKey = await publicKeyOf('coordinator', 'coordinator');
    // init re-issues the baseline coordinator identity with a new key: the running one's key is no longer a user.
    await revoke('coordinator', 'coordinator');
    expect(await publicKeyOf('coordinator', 'coordinator')).not.toBe(publicKey);
    const exit = await exitWithin(coordinator, 20_000);
    expect(exit?.code, 'coordinator still running 20 s after its user was removed').toBe(2);
    const stderr = coordinator.stderr.join('\n');
    expect(stderr).toContain(publicKey);
    expect(stderr).toMatch(/Authorization Violation/i);
    expect(await exitWithin(agents.get('b') as AgentHandle, 1)).toBeUndefined();
  });
});
