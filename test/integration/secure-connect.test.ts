import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AGENT_MAIN,
  COORDINATOR_MAIN,
  cleanupAll,
  isLogMsg,
  spawnProcess,
  startNatsServer,
  tempDir,
  type NatsServerHandle,
  type ProcessHandle,
} from '../harness/index.ts';
import { runCli } from '../../apps/cli/src/cli.ts';
import { recordingContext } from '../../apps/cli/src/testing/recording-context.ts';
import { generateTestPki, natsServerNkeyConfig, natsServerTlsConfig, TEST_NKEY, type TestPki } from '../harness/tls.ts';

/*
 * A real nats-server that requires TLS with client certificates (a CA and certificates made by openssl in the test)
 * and knows one nkey user; real agent and coordinator processes in production mode, configured by ALLOT_NATS_*
 * variables and a config file. The seeds are test-only keys.
 */
let pki: TestPki;
let server: NatsServerHandle;
let dir: string;
let seedFile: string;
let wrongSeedFile: string;

beforeAll(async () => {
  pki = await generateTestPki();
  dir = await tempDir('secure');
  seedFile = join(dir, 'allot.nk');
  wrongSeedFile = join(dir, 'stranger.nk');
  await writeFile(seedFile, `${TEST_NKEY.seed}\n`, { mode: 0o600 });
  await writeFile(wrongSeedFile, `${TEST_NKEY.wrongSeed}\n`, { mode: 0o600 });
  server = await startNatsServer({ extraConfig: `${natsServerTlsConfig(pki)}\n${natsServerNkeyConfig()}` });
}, 60_000);

afterAll(cleanupAll);

function tlsEnv(): Record<string, string> {
  return { ALLOT_NATS_TLS_CA: pki.caFile, ALLOT_NATS_TLS_CERT: pki.clientCert, ALLOT_NATS_TLS_KEY: pki.clientKey };
}

function agent(nodeId: string, env: Record<string, string>): ProcessHandle {
  return spawnProcess({
    name: `agent ${nodeId}`,
    script: AGENT_MAIN,
    env: {
      ALLOT_LOG_FORMAT: 'json',
      NODE_ENV: 'production',
      ALLOT_NODE_ID: nodeId,
      ALLOT_STATE_DIR: join(dir, nodeId),
      ALLOT_SIMULATED_HOST: 'cores=8,memoryMiB=16384',
      ALLOT_NATS_SERVERS: server.url,
      ...env,
    },
  });
}

async function coordinator(name: string, config: Record<string, unknown>, env: Record<string, string> = {}): Promise<ProcessHandle> {
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify({ coordinatorId: name, ...config }));
  return spawnProcess({
    name: `coordinator ${name}`,
    script: COORDINATOR_MAIN,
    args: [`--config=${file}`],
    env: { ALLOT_LOG_FORMAT: 'json', NODE_ENV: 'production', ...env },
  });
}

/** Everything a process wrote, to look for secrets and messages. */
function output(p: ProcessHandle): string {
  return [...p.lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))), ...p.stderr].join('\n');
}

describe('connecting securely', () => {
  it('an agent and a coordinator in production connect over TLS with their certificate and nkey seed file', async () => {
    const a = agent('sec1', { ...tlsEnv(), ALLOT_NATS_NKEY_SEED_FILE: seedFile });
    await a.waitForLine(isLogMsg('agent ready'), 30_000);
    // Its state is its own: directories 0700, the ledger and the node identity 0600.
    const stateDir = join(dir, 'sec1');
    const modes = [
      stateDir,
      join(stateDir, 'ledger'),
      join(stateDir, 'node-identity'),
      ...(await readdir(join(stateDir, 'ledger'))).map((n) => join(stateDir, 'ledger', n)),
    ];
    for (const path of modes) expect(`${path} ${((await stat(path)).mode & 0o777).toString(8)}`).toMatch(/ (700|600)$/);
    const c = await coordinator('sec-c1', {
      nats: {
        servers: [server.url],
        nkeySeedFile: seedFile,
        tls: { caFile: pki.caFile, certFile: pki.clientCert, keyFile: pki.clientKey },
      },
    });
    await c.waitForLine(isLogMsg('coordinator ready'), 30_000);
    expect(output(a) + output(c)).not.toContain(TEST_NKEY.seed);

    // The CLI through a nats CLI context file (url, nkey, ca, cert, key), as an operator's workstation would have it.
    const home = await tempDir('home');
    await mkdir(join(home, '.config', 'nats', 'context'), { recursive: true });
    const context = { url: server.url, nkey: seedFile, ca: pki.caFile, cert: pki.clientCert, key: pki.clientKey };
    await writeFile(join(home, '.config', 'nats', 'context', 'secure.json'), JSON.stringify(context));
    await writeFile(join(home, '.config', 'nats', 'context.txt'), 'secure\n');
    const cli = recordingContext({ env: { HOME: home } });
    expect(await runCli(['nodes', '--json'], cli), cli.stderr.join('\n')).toBe(0);
    expect(cli.text()).toContain('sec1');
    const stranger = recordingContext({ env: { HOME: home } });
    expect(await runCli(['nodes', '--nkey-seed-file', wrongSeedFile], stranger)).not.toBe(0);
    expect(stranger.stderr.join('\n')).toContain('Authorization Violation');

    expect(await c.stop()).toBe(0);
    expect(await a.stop()).toBe(0);
  });

  it('refuses to start in production without credentials and TLS: exit 2 naming what is missing', async () => {
    const a = agent('sec2', {});
    expect((await a.exited).code).toBe(2);
    expect(a.stderr.join('\n')).toMatch(
      /config error: nats: in production, NATS needs credentials and TLS: no credentials .* and no TLS .*insecure: true/,
    );
    const c = await coordinator('sec-c2', { nats: { servers: [server.url], tls: { caFile: pki.caFile } } });
    expect((await c.exited).code).toBe(2);
    expect(c.stderr.join('\n')).toMatch(/config error: nats: .*no credentials/);
  });

  it('stops at once on a key the server does not know: exit 2, the server message and the seed file named', async () => {
    const a = agent('sec3', { ...tlsEnv(), ALLOT_NATS_NKEY_SEED_FILE: wrongSeedFile });
    const c = await coordinator('sec-c3', {}, { ...tlsEnv(), ALLOT_NATS_SERVERS: server.url, ALLOT_NATS_NKEY_SEED_FILE: wrongSeedFile });
    const [agentExit, coordinatorExit] = await Promise.all([a.exited, c.exited]);
    expect(agentExit.code).toBe(2);
    expect(coordinatorExit.code).toBe(2);
    for (const p of [a, c]) {
      expect(p.stderr.join('\n')).toContain(`refused the credentials (nkeySeedFile ${wrongSeedFile}): Authorization Violation`);
      expect(output(p)).not.toContain(TEST_NKEY.wrongSeed);
    }
  });

  it('never logs a password: a refused user/password stops with the user named and the password nowhere', async () => {
    const c = await coordinator('sec-c4', {
      nats: {
        servers: [server.url],
        user: 'allot',
        password: 'pw-s3cret-never-logged',
        tls: { caFile: pki.caFile, certFile: pki.clientCert, keyFile: pki.clientKey },
      },
    });
    expect((await c.exited).code).toBe(2);
    expect(c.stderr.join('\n')).toContain('(user allot)');
    expect(output(c)).not.toContain('pw-s3cret-never-logged');
  });
});
