import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseDashboard, contentTypeOf, directoryFiles, embeddedFiles, resolveStatic, serveStatic, type StaticFiles } from './static.ts';

let base: string;
let root: string;
let server: Server;
let port: number;

/** A raw GET: the path is sent as written (fetch and URL would normalise `..` away before it reaches the server). */
function get(
  path: string,
  headers: Record<string, string> = {},
  servePort = port,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: servePort, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function serve(dir: string | StaticFiles): Promise<{ server: Server; port: number }> {
  const s = createServer((req, res) => void serveStatic(dir, req, res, (req.url ?? '/').split('?')[0] ?? '/'));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { server: s, port: (s.address() as AddressInfo).port };
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'allot-static-'));
  root = join(base, 'dist');
  await mkdir(join(root, 'assets'), { recursive: true });
  await writeFile(join(root, 'index.html'), '<!doctype html><title>allot</title>');
  await writeFile(join(root, 'assets', 'index-abc123.js'), 'console.log(1)');
  await writeFile(join(root, 'assets', 'index-abc123.css'), 'body{}');
  await writeFile(join(base, 'secret.txt'), 'do not serve me');
  ({ server, port } = await serve(root));
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await rm(base, { recursive: true, force: true });
});

describe('resolveStatic', () => {
  it('maps / to index.html and paths under the root to files', () => {
    expect(resolveStatic('/srv/dist', '/')).toBe('/srv/dist/index.html');
    expect(resolveStatic('/srv/dist', '/assets/a.js')).toBe('/srv/dist/assets/a.js');
  });

  it.each([
    '/../secret.txt',
    '/assets/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/assets/%2e%2e%2f%2e%2e%2fsecret.txt',
    '/..%2fsecret.txt',
    '/a\\..\\..\\secret.txt',
    '/%5c..%5csecret.txt',
    '/index.html%00.js',
    '/%E0%A4%A',
    'relative.txt',
  ])('refuses %s', (path) => {
    expect(resolveStatic('/srv/dist', path)).toBeNull();
  });
});

describe('serveStatic', () => {
  it('serves index.html without long caching and with a CSP', async () => {
    const r = await get('/');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-cache');
    expect(r.headers['content-security-policy']).toContain("default-src 'self'");
    expect(r.body).toContain('<title>allot</title>');
  });

  it('serves hashed assets with their content type, cached for good, and answers 304 to a matching ETag', async () => {
    const js = await get('/assets/index-abc123.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const css = await get('/assets/index-abc123.css');
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    const again = await get('/assets/index-abc123.js', { 'if-none-match': String(js.headers['etag']) });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
  });

  it.each(['/../secret.txt', '/assets/../../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt', '/%5c..%5csecret.txt'])(
    'refuses the traversal %s without reading outside the root',
    async (path) => {
      const r = await get(path);
      expect(r.status).toBe(400);
      expect(r.body).not.toContain('do not serve me');
    },
  );

  it('answers 404 for a file that is not there', async () => {
    expect((await get('/nope.js')).status).toBe(404);
  });

  it('says how to build the dashboard when dist is missing', async () => {
    const missing = await serve(join(base, 'not-built'));
    try {
      const r = await get('/', {}, missing.port);
      expect(r.status).toBe(503);
      expect(r.body).toContain('dashboard not built: run pnpm build');
    } finally {
      await new Promise<void>((r) => missing.server.close(() => r()));
    }
  });

  it('knows the content types of what Vite emits', () => {
    expect(contentTypeOf('a.svg')).toBe('image/svg+xml');
    expect(contentTypeOf('a.map')).toBe('application/json; charset=utf-8');
    expect(contentTypeOf('a.unknown')).toBe('application/octet-stream');
  });
});

describe('the dashboard the release executable carries (SEA assets under dashboard/)', () => {
  const text = (s: string): ArrayBuffer => new TextEncoder().encode(s).buffer;
  const assets = new Map([
    ['app.mjs', text('the bundle')],
    ['dashboard/index.html', text('<!doctype html><title>embedded</title>')],
    ['dashboard/assets/index-abc123.js', text('console.log(2)')],
  ]);
  const store = { keys: () => [...assets.keys()], get: (key: string) => assets.get(key) ?? new ArrayBuffer(0) };

  it('serves its files by the same rules as a directory, nothing outside dashboard/', async () => {
    const files = embeddedFiles(store, 1_700_000_000_000);
    expect(files).not.toBeNull();
    const embedded = await serve(files as StaticFiles);
    try {
      const page = await get('/', {}, embedded.port);
      expect(page.status).toBe(200);
      expect(page.headers['content-security-policy']).toContain("default-src 'self'");
      expect(page.body).toContain('<title>embedded</title>');
      const js = await get('/assets/index-abc123.js', {}, embedded.port);
      expect(js.body).toBe('console.log(2)');
      expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect((await get('/assets/index-abc123.js', { 'if-none-match': String(js.headers['etag']) }, embedded.port)).status).toBe(304);
      expect((await get('/app.mjs', {}, embedded.port)).status).toBe(404);
      expect((await get('/../app.mjs', {}, embedded.port)).status).toBe(400);
    } finally {
      await new Promise<void>((r) => embedded.server.close(() => r()));
    }
  });

  it('is absent from an executable built without the dashboard', () => {
    expect(embeddedFiles({ keys: () => ['app.mjs'], get: () => new ArrayBuffer(0) }, 0)).toBeNull();
  });
});

describe('chooseDashboard', () => {
  const embedded = embeddedFiles(
    { keys: () => ['dashboard/index.html'], get: () => new TextEncoder().encode('<title>embedded</title>').buffer },
    0,
  ) as StaticFiles;

  it('serves a configured directory that holds a build, else the executable', async () => {
    expect((await chooseDashboard(root, embedded, '/default')).files.source).toBe(root);
    expect((await chooseDashboard(undefined, embedded, '/default')).files).toBe(embedded);
    expect((await chooseDashboard(undefined, null, '/default')).files.source).toBe('/default');
  });

  it("falls back to the executable's dashboard, and says so, when the configured directory holds none", async () => {
    // An upgraded .deb whose kept conffile names /usr/share/allot/dashboard, which the new package no longer ships.
    const chosen = await chooseDashboard(join(base, 'removed'), embedded, '/default');
    expect(chosen.files).toBe(embedded);
    expect(chosen.ignored).toBe(join(base, 'removed'));
    // Without a dashboard in the executable, the configured directory stays (its 503 page says how to build one).
    expect((await chooseDashboard(join(base, 'removed'), null, '/default')).files.source).toBe(join(base, 'removed'));
    expect(directoryFiles(root).source).toBe(root);
  });
});
