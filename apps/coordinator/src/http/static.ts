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
 * Serves a file of the built dashboard: content type by extension, ETag (size and mtime) with 304s, Cache-Control by
 * path. A missing build answers 503 with a page that says how to build it.
 */
export async function serveStatic(root: string, req: IncomingMessage, res: ServerResponse, urlPath: string): Promise<void> {
  const file = resolveStatic(root, urlPath);
  if (file === null) {
    res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('bad path\n');
    return;
  }
  const info = await stat(file).catch(() => null);
  if (info === null || !info.isFile()) {
    const built = await stat(join(root, 'index.html')).catch(() => null);
    if (built === null) {
      res.writeHead(503, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(NOT_BUILT);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
    return;
  }
  const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
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
  const body = await readFile(file);
  headers['content-length'] = String(body.byteLength);
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}
