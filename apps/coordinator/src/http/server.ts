import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { err, HealthSchema, NodeIdSchema, NodeLivenessSchema, ok, type Result } from '@allot/core';
import { listenHttp, type HttpServer } from '@allot/telemetry';
import type { Logger } from 'pino';
import type { AgentClient } from '../agents.ts';
import { withCoreList } from '../core-list.ts';
import { allAllocations } from '../allocation-pages.ts';
import type { ClusterManager } from '../cluster-manager.ts';
import type { JetStreamClient } from '../nats-deps.ts';
import type { ClusterView } from '../view.ts';
import { DroppedInput } from '../dropped-input.ts';
import { access, defaultAllowedHosts, isLoopback, TOKEN_PATTERN, type AccessPolicy } from './auth.ts';
import type { AllocationsResponse, ClusterAllocationsResponse, DeltaMessage, NodeRow } from '@allot/protocol/http';
import { listAllocationsFromQuery } from './allocations-route.ts';
import { followEvents } from './events-feed.ts';
import { DashboardModel, type Backlog, type QuotaSource } from './model.ts';
import { frame, SseHub, type SseHubOptions } from './sse.ts';
import { chooseDashboard, executableDashboard, serveStatic } from './static.ts';

/*
 * The coordinator's HTTP side: the dashboard's static files, a small read-only JSON API and one SSE stream, served by
 * the listener every allot process uses (@allot/telemetry's listenHttp: limits, errors, shutdown). Plain node:http
 * rather than a framework: a dozen GET routes, one long-lived stream whose backpressure we handle
 * ourselves (sse.ts), no body parsing, and no dependency to audit or keep up to date on a process that holds the
 * cluster's scheduling path.
 */

/** A route mounted from outside, keyed by exact path; behind the same Host and token checks as the rest. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** Where the built dashboard is by default: apps/dashboard/dist next to this app. */
export const DEFAULT_DASHBOARD_DIR = fileURLToPath(new URL('../../../dashboard/dist', import.meta.url));

export interface HttpServerOptions {
  readonly host: string;
  /** 0 picks a free port (the handle's url says which). */
  readonly port: number;
  /** The built dashboard's directory; default: the one the release executable carries, else DEFAULT_DASHBOARD_DIR. */
  readonly dashboardDir?: string;
  readonly logger: Logger;
  readonly now?: () => number;
  /** Delta cadence: changes are coalesced into at most one delta per tick (default 250 ms: ~4 a second). */
  readonly tickMs?: number;
  readonly heartbeatMs?: number;
  readonly seriesEveryMs?: number;
  readonly seriesPoints?: number;
  /** How far back the event feed starts (default 5 minutes). */
  readonly eventsLookbackMs?: number;
  readonly extraRoutes?: Map<string, RouteHandler>;
  /** Required to listen beyond loopback (auth.ts says how the page gets it). */
  readonly token?: string;
  /** Host header names accepted (DNS rebinding); default: localhost, 127.0.0.1, ::1 and the bound address. */
  readonly allowedHosts?: readonly string[];
  /** Open TCP connections at most (default 256); past it the server closes new ones at once. */
  readonly maxConnections?: number;
  /** Live feeds (SSE) at most (default 64); past it a page is answered 503 and its EventSource retries. */
  readonly maxSseClients?: number;
  /** Node allocation listings in flight at most (default 4; each pages through up to 10,000 from an agent). */
  readonly maxListings?: number;
  /** GET /healthz answers 200 once this says the coordinator serves (default: always). */
  readonly ready?: () => boolean;
}

export interface HttpDeps {
  readonly view: ClusterView;
  readonly quotas?: QuotaSource;
  /** For GET /api/nodes/:id/allocations; without it that route answers 503. */
  readonly agents?: Pick<AgentClient, 'call'>;
  /** For GET /api/allocations (the allocations verb's listing); without it that route answers 503. */
  readonly manager?: Pick<ClusterManager, 'getAllocations'>;
  /** For the event feed; without it the feed stays empty. */
  readonly js?: JetStreamClient;
  /** Counts what the event feed and the ticker drop instead of crashing. */
  readonly dropped?: DroppedInput;
}

export interface DashboardServer {
  /** http://host:port */
  readonly url: string;
  readonly model: DashboardModel;
  readonly hub: SseHub<Backlog>;
  /** Routes matched by exact path before the built-in ones; add to it at any time (GET /metrics). */
  readonly extraRoutes: Map<string, RouteHandler>;
  /** Publishes the pending changes now instead of at the next tick (tests). */
  tick(): void;
  stop(): Promise<void>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': String(Buffer.byteLength(text)),
    'x-content-type-options': 'nosniff',
  });
  res.end(text);
}

function problem(res: ServerResponse, status: number, code: string, message: string): void {
  json(res, status, { error: { code, message } });
}

/** ?liveness=&health=&tenant=&label=k=v (label repeatable; `k` alone means the label exists). */
export function filterRows(rows: NodeRow[], query: URLSearchParams): Result<NodeRow[]> {
  const liveness = query.get('liveness');
  if (liveness !== null && !NodeLivenessSchema.safeParse(liveness).success)
    return err('invalid_request', `liveness: ready, suspect or lost, not "${liveness}"`);
  const health = query.get('health');
  const healthStatuses = HealthSchema.options.map((o) => o.shape.status.value as string);
  if (health !== null && !healthStatuses.includes(health))
    return err('invalid_request', `health: one of ${healthStatuses.join(', ')}, not "${health}"`);
  const tenant = query.get('tenant');
  const labels = query.getAll('label').map((l) => {
    const i = l.indexOf('=');
    return i === -1 ? { key: l, value: undefined } : { key: l.slice(0, i), value: l.slice(i + 1) };
  });
  return ok(
    rows.filter(
      (r) =>
        (liveness === null || r.liveness === liveness) &&
        (health === null || r.health.status === health) &&
        (tenant === null || r.tenants.includes(tenant)) &&
        labels.every((l) => (l.value === undefined ? l.key in r.labels : r.labels[l.key] === l.value)),
    ),
  );
}

/**
 * The page feed: a snapshot of the model on connect, its deltas after, and a page that falls behind is sent what
 * changed since what it was sent, at its own pace (model.ts, Backlog), not the deltas it missed nor a snapshot.
 */
export function dashboardHub(
  model: DashboardModel,
  now: () => number,
  options: Omit<SseHubOptions<Backlog>, 'snapshotJson' | 'catchUp' | 'now'> = {},
): SseHub<Backlog> {
  return new SseHub<Backlog>({
    ...options,
    snapshotJson: () => model.snapshotJson(now()),
    catchUp: {
      start: () => model.newBacklog(),
      add: (backlog, event, data) => event !== 'delta' || model.addToBacklog(backlog, data as DeltaMessage),
      frames: (backlog) =>
        model
          .catchUpDeltas(backlog, now())
          .map((d) => frame('delta', d))
          .join(''),
    },
    now,
  });
}

/** Starts the HTTP server, the event feed and the delta ticker. */
export async function startHttpServer(deps: HttpDeps, options: HttpServerOptions): Promise<Result<DashboardServer>> {
  const now = options.now ?? Date.now;
  const logger = options.logger;
  if (options.token === undefined && !isLoopback(options.host))
    return err('invalid_request', `dashboard: listening on ${options.host} needs http.token (or listen on loopback only)`, {
      field: 'http.token',
    });
  if (options.token !== undefined && !TOKEN_PATTERN.test(options.token))
    return err('invalid_request', 'dashboard: http.token must be 16 to 256 letters, digits or ._~-', { field: 'http.token' });
  const policy: AccessPolicy = {
    token: options.token,
    allowedHosts: new Set((options.allowedHosts ?? defaultAllowedHosts(options.host)).map((h) => h.toLowerCase())),
  };
  const dropped = deps.dropped ?? new DroppedInput(logger);
  const maxSseClients = options.maxSseClients ?? 64;
  const maxListings = options.maxListings ?? 4;
  let listings = 0;
  // A configured directory that holds a build, else the dashboard the release executable carries, else the workspace's.
  const chosen = await chooseDashboard(options.dashboardDir, executableDashboard(), DEFAULT_DASHBOARD_DIR);
  if (chosen.ignored !== undefined)
    logger.warn({ dashboardDir: chosen.ignored }, "dashboard: no build in dashboardDir, serving the executable's own instead");
  const dashboard = chosen.files;
  const model = new DashboardModel(deps.view, deps.quotas, {
    ...(options.seriesEveryMs === undefined ? {} : { seriesEveryMs: options.seriesEveryMs }),
    ...(options.seriesPoints === undefined ? {} : { seriesPoints: options.seriesPoints }),
  });
  const hub = dashboardHub(model, now, options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs });
  const extraRoutes = options.extraRoutes ?? new Map<string, RouteHandler>();

  const allocations = async (res: ServerResponse, nodeId: string) => {
    if (deps.agents === undefined) return problem(res, 503, 'unavailable', 'this server cannot reach the agents');
    if (deps.view.get(nodeId) === undefined) return problem(res, 404, 'not_found', `node ${nodeId} has not reported`);
    // Bound: at most maxListings at once, each at most 10,000 allocations (about 10 MB of JSON at worst).
    if (listings >= maxListings) return problem(res, 503, 'unavailable', 'too many allocation listings in flight; retry');
    listings += 1;
    // Page by page (at most 1,000 a page): one reply of 10,000 exceeded the NATS payload limit (finding 11).
    const r = await allAllocations(deps.agents, nodeId, { status: 'live' }, { max: 10_000, pageSize: 1_000, timeoutMs: 3_000 }).finally(
      () => (listings -= 1),
    );
    if (!r.ok) return problem(res, r.error.code === 'timeout' ? 504 : 502, r.error.code, `agent ${nodeId}: ${r.error.message}`);
    const body: AllocationsResponse = { nodeId, at: now(), allocations: r.value.allocations, truncated: r.value.truncated };
    json(res, 200, body);
  };

  const clusterAllocations = async (res: ServerResponse, query: URLSearchParams) => {
    if (deps.manager === undefined) return problem(res, 503, 'unavailable', 'this server cannot reach the agents');
    // Bound: a page is at most 1,000 allocations, and at most maxListings listings are in flight.
    if (listings >= maxListings) return problem(res, 503, 'unavailable', 'too many allocation listings in flight; retry');
    listings += 1;
    const r = await listAllocationsFromQuery(deps.manager, query, 3_000).finally(() => (listings -= 1));
    if (!r.ok)
      return problem(
        res,
        r.error.code === 'invalid_request' ? 400 : r.error.code === 'not_found' ? 404 : 502,
        r.error.code,
        r.error.message,
      );
    const body: ClusterAllocationsResponse = { now: now(), ...r.value };
    json(res, 200, body);
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const path = url.pathname;
    const allowed = access(req, url, policy, path === '/healthz');
    if (allowed.kind === 'refused')
      return problem(res, allowed.status, allowed.status === 401 ? 'unauthorized' : 'misdirected', allowed.message);
    if (allowed.kind === 'redirect') {
      res.writeHead(303, { location: allowed.location, 'set-cookie': allowed.cookie, 'cache-control': 'no-store' }).end();
      return;
    }
    if (path === '/healthz') {
      const serving = options.ready?.() ?? true;
      return json(res, serving ? 200 : 503, { status: serving ? 'ready' : 'starting' });
    }
    const extra = extraRoutes.get(path);
    if (extra !== undefined) return extra(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    if (!path.startsWith('/api/')) return serveStatic(dashboard, req, res, path);
    const parts = path.split('/').filter((p) => p !== ''); // ['api', ...]
    const t = now();
    switch (parts[1]) {
      case 'cluster':
        if (parts.length === 2) return json(res, 200, { now: t, cluster: model.cluster(t) });
        break;
      case 'nodes': {
        if (parts.length === 2) {
          const rows = filterRows(model.rows(), url.searchParams);
          return rows.ok ? json(res, 200, { now: t, nodes: rows.value }) : problem(res, 400, rows.error.code, rows.error.message);
        }
        const id = NodeIdSchema.safeParse(parts[2]);
        if (!id.success) return problem(res, 400, 'invalid_request', 'node id: letters, digits, "_" and "-" only');
        if (parts.length === 3) {
          const node = deps.agents === undefined ? deps.view.get(id.data) : await withCoreList(deps.view, deps.agents, id.data);
          return node === undefined ? problem(res, 404, 'not_found', `node ${id.data} has not reported`) : json(res, 200, { now: t, node });
        }
        if (parts.length === 4 && parts[3] === 'allocations') return allocations(res, id.data);
        break;
      }
      case 'allocations':
        if (parts.length === 2) return clusterAllocations(res, url.searchParams);
        break;
      case 'tenants':
        if (parts.length === 2) return json(res, 200, { now: t, tenants: model.tenants() });
        break;
      case 'series':
        if (parts.length === 2) return json(res, 200, model.series.toSeries());
        break;
      case 'events':
        if (parts.length === 3 && parts[2] === 'stream') {
          // Bound: each feed holds a socket and up to the hub's buffer limit; an EventSource retries after a 503.
          if (hub.size >= maxSseClients) {
            res.setHeader('retry-after', '5');
            return problem(res, 503, 'unavailable', `at most ${maxSseClients} live feeds at once`);
          }
          res.writeHead(200, {
            'content-type': 'text/event-stream; charset=utf-8',
            'cache-control': 'no-store',
            connection: 'keep-alive',
            'x-accel-buffering': 'no',
          });
          res.flushHeaders();
          req.socket.setNoDelay(true);
          hub.add(res);
          return;
        }
        break;
    }
    problem(res, 404, 'not_found', `no route ${path}`);
  };

  let server: HttpServer;
  try {
    server = await listenHttp({
      host: options.host,
      port: options.port,
      // Bound: open connections (feeds, keep-alive and half-sent requests alike); node:http closes the ones past it.
      maxConnections: options.maxConnections ?? 256,
      // Long-lived SSE responses must not be cut by a request timeout.
      requestTimeoutMs: 0,
      handle: (req, res) =>
        route(req, res).catch((e: unknown) => {
          logger.error({ err: e, url: req.url }, 'dashboard request failed');
          if (!res.headersSent) problem(res, 500, 'internal', 'internal error');
          else res.destroy();
        }),
    });
  } catch (e) {
    hub.close();
    return err('unavailable', `dashboard: cannot listen on ${options.host}:${options.port}: ${(e as Error).message}`);
  }

  let stopEvents: (() => Promise<void>) | undefined;
  if (deps.js !== undefined) {
    try {
      stopEvents = await followEvents(deps.js, (e) => model.addEvent(e), {
        logger,
        now,
        lookbackMs: options.eventsLookbackMs ?? 5 * 60_000,
        dropped,
      });
    } catch (e) {
      logger.warn({ error: (e as Error).message }, 'dashboard: cannot follow ALLOT_EVENTS; the event feed stays empty');
    }
  }

  // A timer callback: a throw (bad data in the view) would take the coordinator down; counted and skipped instead.
  const tick = () =>
    dropped.guard('dashboard_tick', () => {
      const delta = model.tick(now());
      if (delta !== null) hub.broadcast('delta', delta);
    });
  // The first tick sets the baseline (and the first series point) so the first delta a page sees is a real change.
  model.tick(now());
  const ticker = setInterval(tick, options.tickMs ?? 250);
  ticker.unref();

  const url = server.url;
  logger.info({ url, dashboardDir: dashboard.source }, 'dashboard listening');
  return ok({
    url,
    model,
    hub,
    extraRoutes,
    tick,
    stop: async () => {
      clearInterval(ticker);
      hub.close();
      await stopEvents?.();
      await server.close();
    },
  });
}
