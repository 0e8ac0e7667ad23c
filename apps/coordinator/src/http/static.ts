import { statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

export function contentTypeOf(path: string): string {
  return CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * The file under `root` that a URL path names, or null when the path is refused: not decodable, holding a NUL or a
 * backslash, or escaping `root` once `..` segments are resolved. `/` names index.html.
 */
export function resolveStatic(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (!decoded.startsWith('/') || decoded.includes('\0') || decoded.includes('\\')) return null;
  // Any `..` segment is refused outright, even one that would stay inside root: no legitimate asset URL has one.
  if (decoded.split('/').some((segment) => segment === '..')) return null;
  const relative = decoded === '/' ? 'index.html' : decoded.slice(1);
  const base = normalize(root);
  const full = normalize(join(base, relative));
  if (full !== base && !full.startsWith(base.endsWith(sep) ? base : base + sep)) return null;
  return full;
}

/** Vite's content-hashed output: cacheable forever. Everything else (index.html) is revalidated on every load. */
function cacheControlOf(urlPath: string): string {
  return urlPath.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache';
}

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>allot: dashboard not built</title></head>
<body style="font-family: system-ui, sans-serif; margin: 3rem"><h1>dashboard not built: run pnpm build</h1>
<p>The coordinator serves the dashboard from <code>apps/dashboard/dist</code>, which does not exist yet.
Run <code>pnpm build</code> (or <code>pnpm exec turbo run build</code>) at the repository root, then reload.
The JSON API under <code>/api/</code> works without it.</p></body></html>`;

/**
 * The built dashboard's files, by path relative to its root ('index.html', 'assets/x.js'): a directory, or the assets
 * the release executable carries.
 */
export interface StaticFiles {
  /** What the `dashboard listening` line names as the source. */
  readonly source: string;
  /** The file's size and a stamp that changes with its content (the ETag's parts), or null when there is none. */
  stat(relative: string): Promise<{ size: number; stamp: number } | null>;
  read(relative: string): Promise<Uint8Array>;
}

export function directoryFiles(root: string): StaticFiles {
  return {
    source: root,
    stat: async (relative) => {
      const info = await stat(join(root, relative)).catch(() => null);
      return info === null || !info.isFile() ? null : { size: info.size, stamp: Math.floor(info.mtimeMs) };
    },
    read: (relative) => readFile(join(root, relative)),
  };
}

/** The SEA asset API (node:sea) as embeddedFiles uses it. */
export interface AssetStore {
  keys(): string[];
  get(key: string): ArrayBuffer;
}

/** Where the release build puts the dashboard among the coordinator executable's assets (scripts/release/artifacts.ts). */
const DASHBOARD_ASSET_PREFIX = 'dashboard/';

/**
 * The dashboard the executable carries, read without a copy, or null when it carries none. `stamp` stands in for a
 * modification time in the ETag (the executable's, so an upgrade revalidates index.html).
 */
export function embeddedFiles(assets: AssetStore, stamp: number): StaticFiles | null {
  const keys = new Set(assets.keys().filter((key) => key.startsWith(DASHBOARD_ASSET_PREFIX)));
  if (!keys.has(`${DASHBOARD_ASSET_PREFIX}index.html`)) return null;
  const asset = (relative: string): ArrayBuffer | null => {
    const key = DASHBOARD_ASSET_PREFIX + relative;
    return keys.has(key) ? assets.get(key) : null;
  };
  return {
    source: 'the executable',
    stat: async (relative) => {
      const body = asset(relative);
      return body === null ? null : { size: body.byteLength, stamp };
    },
    read: async (relative) => new Uint8Array(asset(relative) ?? new ArrayBuffer(0)),
  };
}

/** The dashboard of this process's executable when it is the release's single executable that carries one. */
export function executableDashboard(): StaticFiles | null {
  const sea = process.getBuiltinModule('node:sea');
  if (!sea.isSea()) return null;
  return embeddedFiles(
    { keys: () => sea.getAssetKeys(), get: (key) => sea.getRawAsset(key) },
    Math.floor(statSync(process.execPath).mtimeMs),
  );
}

/**
 * The dashboard to serve: the configured directory when it holds a build; else the one the executable carries (also in
 * place of a configured directory without a build, named in `ignored`: an upgraded .deb keeps an edited conffile whose
 * dashboardDir names /usr/share/allot/dashboard, which the package no longer ships); else the configured directory or
 * the workspace's build, whose 503 page says how to build one.
 */
export async function chooseDashboard(
  configured: string | undefined,
  embedded: StaticFiles | null,
  workspace: string,
): Promise<{ files: StaticFiles; ignored?: string }> {
  if (configured !== undefined) {
    const files = directoryFiles(configured);
    if (embedded === null || (await files.stat('index.html')) !== null) return { files };
    return { files: embedded, ignored: configured };
  }
  return { files: embedded ?? directoryFiles(workspace) };
}

/**
 * Serves a file of the built dashboard: content type by extension, ETag (size and mtime) with 304s, Cache-Control by
 * path. A missing build answers 503 with a page that says how to build it.
 */
export async function serveStatic(from: string | StaticFiles, req: IncomingMessage, res: ServerResponse, urlPath: string): Promise<void> {
  const files = typeof from === 'string' ? directoryFiles(from) : from;
  // Resolved against a root of its own: the same refusals for a directory and for the assets, then relative to either.
  const file = resolveStatic(sep, urlPath)?.slice(sep.length) ?? null;
  if (file === null) {
    res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('bad path\n');
    return;
  }
  const info = await files.stat(file);
  if (info === null) {
    const built = await files.stat('index.html');
    if (built === null) {
      res.writeHead(503, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(NOT_BUILT);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
    return;
  }
  const etag = `"${info.size.toString(16)}-${info.stamp.toString(16)}"`;
  const headers: Record<string, string> = {
    'content-type': contentTypeOf(file),
    'cache-control': cacheControlOf(urlPath),
    etag,
    'x-content-type-options': 'nosniff',
  };
  if (file.endsWith('.html')) {
    // The page loads only its own scripts; uPlot sets inline styles, hence 'unsafe-inline' for styles only.
    headers['content-security-policy'] =
      "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";
    headers['referrer-policy'] = 'no-referrer';
  }
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers).end();
    return;
  }
  const body = await files.read(file);
  headers['content-length'] = String(body.byteLength);
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}
