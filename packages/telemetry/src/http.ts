import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tokenMatches } from './bearer.ts';

export type Route = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export type HttpOptions = {
  host: string;
  /** 0 picks a free port (see `port` of the result). */
  port: number;
  /** Exact paths (no query string) to handlers; GET and HEAD only. */
  routes: Record<string, Route>;
  /** Told about a handler that threw; the client gets a 500. */
  onError?: (error: unknown, path: string) => void;
  /** Open connections at most (default 64: a few scrapers and probes); node:http closes the ones past it at once. */
  maxConnections?: number;
  /** When set, every route but `openPaths` answers 401 unless the request has `Authorization: Bearer <token>`. */
  bearerToken?: string;
  /** Routes served without the token (health probes). */
  openPaths?: readonly string[];
};

export type HttpServer = {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
};

/** A tiny node:http server for /metrics and /healthz; anything else is 404, methods other than GET/HEAD 405. */
export function serveHttp(options: HttpOptions): Promise<HttpServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = Object.hasOwn(options.routes, path) ? options.routes[path] : undefined;
    if (route === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('method not allowed\n');
      return;
    }
    if (
      options.bearerToken !== undefined &&
      options.openPaths?.includes(path) !== true &&
      !bearerMatches(req.headers.authorization, options.bearerToken)
    ) {
      res
        .writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer realm="allot"' })
        .end('this listener needs Authorization: Bearer <token>\n');
      return;
    }
    const fail = (error: unknown) => {
      options.onError?.(error, path);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    };
    try {
      const out = route(req, res);
      if (out instanceof Promise) out.catch(fail);
    } catch (error) {
      fail(error);
    }
  });
  // Scrapes are short; idle keep-alive sockets must not hold a stop, nor slow senders a connection slot.
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.maxConnections = options.maxConnections ?? 64;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      const port = (server.address() as AddressInfo).port;
      const host = options.host.includes(':') ? `[${options.host}]` : options.host;
      resolve({
        url: `http://${host}:${port}`,
        port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

function bearerMatches(header: string | undefined, token: string): boolean {
  // The scheme name is case-insensitive (RFC 7235).
  return header !== undefined && /^bearer /i.test(header) && tokenMatches(header.slice('bearer '.length).trim(), token);
}

/** A JSON answer with a status (healthz). */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res
    .writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) })
    .end(text);
}
