import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanupAll,
  COORDINATOR_MAIN,
  freePort,
  isLogMsg,
  spawnProcess,
  startAgent,
  startNatsServer,
  tempDir,
  type NatsServerHandle,
  type OutputLine,
  type ProcessHandle,
} from '../harness/index.ts';

/*
 * Who may read the metrics listeners of a real agent and a real coordinator: loopback by default, and with
 * `tokenFile` in their config only a scraper that sends `Authorization: Bearer <token>` gets /metrics (/healthz stays
 * open for probes). In production, a listener on another address than loopback needs the token.
 */
const TOKEN = 'metrics-token-0123456789abcdef';
let server: NatsServerHandle;
let dir: string;
let tokenFile: string;

beforeAll(async () => {
  server = await startNatsServer();
  dir = await tempDir('metrics-access');
  tokenFile = join(dir, 'metrics.token');
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
}, 60_000);

afterAll(cleanupAll);

async function get(url: string, token?: string): Promise<{ status: number; body: string; challenge: string | null }> {
  const res = await fetch(url, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.text(), challenge: res.headers.get('www-authenticate') };
}

/** The URL a process logged for its metrics listener. */
async function listenerUrl(p: ProcessHandle): Promise<string> {
  const line = (await p.waitForLine(isLogMsg('metrics and health listening'), 30_000)) as Record<string, unknown>;
  return String(line['url']);
}

/** The exit code, or 'running' when the process has not exited within `ms`. */
async function exitCode(p: ProcessHandle, ms = 30_000): Promise<number | null | 'running'> {
  const exit = await Promise.race([p.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms))]);
  return exit === undefined ? 'running' : exit.code;
}

function output(p: ProcessHandle): string {
  return [...p.lines.map((l: OutputLine) => (typeof l === 'string' ? l : JSON.stringify(l))), ...p.stderr].join('\n');
}

async function coordinator(name: string, config: Record<string, unknown>, env: Record<string, string> = {}): Promise<ProcessHandle> {
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify({ coordinatorId: name, nats: { servers: [server.url] }, ...config }));
  return spawnProcess({
    name: `coordinator ${name}`,
    script: COORDINATOR_MAIN,
    args: ['--config', file],
    env: { ALLOT_LOG_FORMAT: 'json', NODE_ENV: 'test', ...env },
  });
}

/** /metrics refused without the token or with another, served with it; /healthz open. */
async function expectTokenGuards(url: string): Promise<void> {
  const bare = await get(`${url}/metrics`);
  expect(bare.status).toBe(401);
  expect(bare.challenge).toMatch(/^Bearer/);
  expect(bare.body).not.toContain('allot_');
  expect((await get(`${url}/metrics`, 'metrics-token-0123456789abcdeX')).status).toBe(401);
  const scraped = await get(`${url}/metrics`, TOKEN);
  expect(scraped.status).toBe(200);
  expect(scraped.body).toContain('allot_');
  expect((await get(`${url}/healthz`)).status).toBe(200);
}

describe('the metrics listeners of the agent and the coordinator', () => {
  it('listen on loopback unless told otherwise', async () => {
    const agent = await startAgent({
      natsUrl: server.url,
      nodeId: 'ma0',
      stateDir: join(dir, 'ma0'),
      env: { ALLOT_HTTP_PORT: String(await freePort()) },
    });
    expect(await listenerUrl(agent)).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const c = await coordinator('mc0', { metrics: { port: await freePort() } });
    expect(await listenerUrl(c)).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await c.stop()).toBe(0);
    expect(await agent.stop()).toBe(0);
  });

  it('the agent serves /metrics only with the bearer token from http.tokenFile, and never logs it', async () => {
    const agent = await startAgent({
      natsUrl: server.url,
      nodeId: 'ma1',
      stateDir: join(dir, 'ma1'),
      env: { ALLOT_HTTP_PORT: String(await freePort()), ALLOT_HTTP_TOKEN_FILE: tokenFile },
    });
    await expectTokenGuards(await listenerUrl(agent));
    expect(output(agent)).not.toContain(TOKEN);
    expect(await agent.stop()).toBe(0);
  });

  it('the coordinator serves /metrics only with the bearer token from metrics.tokenFile, and never logs it', async () => {
    const c = await coordinator('mc1', { metrics: { port: await freePort(), tokenFile } });
    await c.waitForLine(isLogMsg('coordinator ready'), 30_000);
    await expectTokenGuards(await listenerUrl(c));
    expect(output(c)).not.toContain(TOKEN);
    expect(await c.stop()).toBe(0);
  });

  it('a token file that cannot be read, or holds no usable token, stops the process with exit 2 naming the file', async () => {
    const missing = join(dir, 'absent.token');
    const agent = await startAgent({
      natsUrl: server.url,
      nodeId: 'ma2',
      stateDir: join(dir, 'ma2'),
      waitReady: false,
      env: { ALLOT_HTTP_PORT: String(await freePort()), ALLOT_HTTP_TOKEN_FILE: missing },
    });
    expect(await exitCode(agent)).toBe(2);
    expect(agent.stderr.join('\n')).toContain(`http.tokenFile: cannot read ${missing}`);
    const short = join(dir, 'short.token');
    await writeFile(short, 'abc\n', { mode: 0o600 });
    const c = await coordinator('mc2', { metrics: { port: await freePort(), tokenFile: short } });
    expect(await exitCode(c)).toBe(2);
    expect(c.stderr.join('\n')).toContain(`metrics.tokenFile: ${short}`);
  });

  it('in production, a listener on another address than loopback without a token is refused (exit 2)', async () => {
    const production = { NODE_ENV: 'production', ALLOT_NATS_INSECURE: 'true' };
    const agent = await startAgent({
      natsUrl: server.url,
      nodeId: 'ma3',
      stateDir: join(dir, 'ma3'),
      waitReady: false,
      env: { ...production, ALLOT_HTTP_HOST: '0.0.0.0', ALLOT_HTTP_PORT: String(await freePort()) },
    });
    expect(await exitCode(agent)).toBe(2);
    expect(agent.stderr.join('\n')).toMatch(/config error: http\.tokenFile: .*0\.0\.0\.0/);
    const c = await coordinator('mc3', { metrics: { host: '0.0.0.0', port: await freePort() } }, production);
    expect(await exitCode(c)).toBe(2);
    expect(c.stderr.join('\n')).toMatch(/config error: metrics\.tokenFile: .*0\.0\.0\.0/);
    // With the token it starts.
    const guarded = await startAgent({
      natsUrl: server.url,
      nodeId: 'ma4',
      stateDir: join(dir, 'ma4'),
      env: { ...production, ALLOT_HTTP_HOST: '0.0.0.0', ALLOT_HTTP_PORT: String(await freePort()), ALLOT_HTTP_TOKEN_FILE: tokenFile },
    });
    const url = (await listenerUrl(guarded)).replace('0.0.0.0', '127.0.0.1');
    expect((await get(`${url}/metrics`)).status).toBe(401);
    expect((await get(`${url}/metrics`, TOKEN)).status).toBe(200);
    expect(await guarded.stop()).toBe(0);
  });
});
