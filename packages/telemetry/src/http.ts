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
  /** Stops listening and closes every connection, long-lived streams included. */
  close(): Promise<void>;
};

/** Request headers at most (node:http answers 431 past it): every allot listener takes a few short GETs. */
export const MAX_HEADER_BYTES = 8 * 1024;

export type ListenOptions = {
  host: string;
  /** 0 picks a free port (see `port` of the result). */
  port: number;
  /** Answers one request; a throw or a rejection is told to onError and answered 500 (or the socket destroyed). */
  handle: (req: IncomingMessage, res: ServerResponse, path: string) => void | Promise<void>;
  onError?: (error: unknown, path: string) => void;
  /** Open connections at most; node:http closes the ones past it at once. */
  maxConnections: number;
  /** Longest a request may take, in ms; 0 for a server holding long-lived streams (the dashboard's SSE). */
  requestTimeoutMs?: number;
};

/**
 * The one HTTP listener of allot (the dashboard and API, the agent's and the coordinator's metrics and health):
 * listen, the limits, errors, shutdown. None of them reads a request body, so one is refused with 413 and the
 * connection closed; headers are bounded; a handler's failure is a 500, never a crash.
 */
export function listenHttp(options: ListenOptions): Promise<HttpServer> {
  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (hasBody(req)) {
      res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' }).end('this server takes no request body\n');
      return;
    }
    const fail = (error: unknown) => {
      options.onError?.(error, path);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n');
      else res.destroy();
    };
    try {
      const out = options.handle(req, res, path);
      if (out instanceof Promise) out.catch(fail);
    } catch (error) {
      fail(error);
    }
  });
  // Requests are short; idle keep-alive sockets must not hold a stop, nor slow senders a connection slot.
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = options.requestTimeoutMs ?? 30_000;
  server.maxConnections = options.maxConnections;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve({
        url: `http://${host}:${address.port}`,
        port: address.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/** Exact paths to handlers, GET and HEAD only, with an optional bearer token: the metrics and health listeners. */
export function serveHttp(options: HttpOptions): Promise<HttpServer> {
  return listenHttp({
    host: options.host,
    port: options.port,
    maxConnections: options.maxConnections ?? 64,
    ...(options.onError === undefined ? {} : { onError: options.onError }),
    handle: (req, res, path) => {
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
      return route(req, res);
    },
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
