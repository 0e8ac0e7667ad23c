import { request } from 'node:http';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DroppedInput } from '../dropped-input.ts';
import { ClusterView } from '../view.ts';
import { syntheticSnapshot } from './fixtures.ts';
import { startHttpServer, type DashboardServer, type HttpServerOptions } from './server.ts';

const log = pino({ level: 'silent' });
const TOKEN = 'dashboard-token-0123456789';
const servers: DashboardServer[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
});

async function start(
  options: Partial<HttpServerOptions> = {},
  view = new ClusterView({ lostAfterMs: 30_000 }),
  dropped?: DroppedInput,
): Promise<DashboardServer> {
  const started = await startHttpServer(
    { view, ...(dropped === undefined ? {} : { dropped }) },
    { host: '127.0.0.1', port: 0, logger: log, tickMs: 20, ...options },
  );
  if (!started.ok) throw new Error(started.error.message);
  servers.push(started.value);
  return started.value;
}

/** A GET with chosen headers (fetch cannot set Host). */
function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the dashboard server: who may use it', () => {
  it('asks for the token, takes it once from the URL into a cookie and redirects to the URL without it', async () => {
    const s = await start({ token: TOKEN });
    expect((await get(`${s.url}/api/cluster`)).status).toBe(401);
    expect((await get(`${s.url}/api/cluster`, { authorization: 'Bearer wrong-token-0123456789' })).status).toBe(401);
    const first = await get(`${s.url}/?token=${TOKEN}&x=1`);
    expect(first.status).toBe(303);
    expect(first.headers.location).toBe('/?x=1');
    const cookie = String(first.headers['set-cookie']).split(';')[0] as string;
    expect(String(first.headers['set-cookie'])).toContain('HttpOnly');
    expect(String(first.headers['set-cookie'])).toContain('SameSite=Strict');
    expect((await get(`${s.url}/api/cluster`, { cookie })).status).toBe(200);
    expect((await get(`${s.url}/api/cluster`, { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
  });

  it('refuses a request whose Host header is not a name of this server (DNS rebinding)', async () => {
    const s = await start();
    expect((await get(`${s.url}/api/cluster`)).status).toBe(200);
    expect((await get(`${s.url}/api/cluster`, { host: 'localhost:1234' })).status).toBe(200);
    expect((await get(`${s.url}/api/cluster`, { host: 'evil.example:7080' })).status).toBe(421);
    expect((await get(`${s.url}/healthz`, { host: 'evil.example' })).status).toBe(421);
  });

  it('will not listen beyond loopback without a token', async () => {
    const started = await startHttpServer({ view: new ClusterView({ lostAfterMs: 30_000 }) }, { host: '0.0.0.0', port: 0, logger: log });
    expect(started.ok).toBe(false);
    if (!started.ok) expect(started.error.message).toMatch(/token/);
  });

  it('serves /healthz without the token: 503 until ready, then 200', async () => {
    let ready = false;
    const s = await start({ token: TOKEN, ready: () => ready });
    expect((await get(`${s.url}/healthz`)).status).toBe(503);
    ready = true;
    const r = await get(`${s.url}/healthz`);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ status: 'ready' });
  });

  it('caps the live feeds: past maxSseClients a page is told 503 and to retry', async () => {
    const s = await start({ maxSseClients: 1 });
    const opened = new Promise<number>((resolve) => request(`${s.url}/api/events/stream`, (res) => resolve(res.statusCode ?? 0)).end());
    expect(await opened).toBe(200);
    const second = await get(`${s.url}/api/events/stream`);
    expect(second.status).toBe(503);
    expect(s.hub.size).toBe(1);
  });
});

describe('the dashboard server on bad data', () => {
  it('keeps ticking when building a delta throws: counted, not a crash', async () => {
    const view = new ClusterView({ lostAfterMs: 30_000 });
    const dropped = new DroppedInput(log);
    const s = await start({}, view, dropped);
    const tick = s.model.tick.bind(s.model);
    let throws = 1;
    s.model.tick = (now) => {
      if (throws-- > 0) throw new Error('boom');
      return tick(now);
    };
    view.apply(syntheticSnapshot({ nodeId: 'n1' }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(dropped.count('dashboard_tick', 'threw')).toBe(1);
  });
});
