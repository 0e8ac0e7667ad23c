import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { serveHttp, type HttpServer } from './http.ts';

let server: HttpServer | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await server?.close();
});

/** Opens a connection and says whether the server closed it within 300 ms. */
function closedBy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    sockets.push(s);
    const timer = setTimeout(() => resolve(false), 300);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    s.on('error', () => undefined);
  });
}

describe('the metrics listener', () => {
  it('closes connections past maxConnections at once instead of holding a slot for each', async () => {
    server = await serveHttp({ host: '127.0.0.1', port: 0, routes: {}, maxConnections: 2 });
    expect(await closedBy(server.port)).toBe(false);
    expect(await closedBy(server.port)).toBe(false);
    expect(await closedBy(server.port)).toBe(true);
  });
});

describe('the metrics listener with a bearer token', () => {
  it('serves guarded paths only with the token (any case of the scheme), open paths without it', async () => {
    const token = 'tok-0123456789abcdef';
    server = await serveHttp({
      host: '127.0.0.1',
      port: 0,
      routes: { '/metrics': (_q, r) => void r.end('m'), '/healthz': (_q, r) => void r.end('h') },
      bearerToken: token,
      openPaths: ['/healthz'],
    });
    const status = async (path: string, authorization?: string) =>
      (await fetch(`${server?.url ?? ''}${path}`, authorization === undefined ? {} : { headers: { authorization } })).status;
    expect(await status('/metrics')).toBe(401);
    expect(await status('/metrics', `Bearer ${token}x`)).toBe(401);
    expect(await status('/metrics', token)).toBe(401);
    expect(await status('/metrics', `Bearer ${token}`)).toBe(200);
    expect(await status('/metrics', `bearer ${token}`)).toBe(200);
    expect(await status('/healthz')).toBe(200);
  });
});
