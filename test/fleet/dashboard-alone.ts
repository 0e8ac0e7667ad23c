// `node test/fleet/dashboard-alone.ts [hosts] [--profile]`: the dashboard figures of docs/benchmarks.md ("Fleet")
// without the rest of the run. The dashboard with 10,000 hosts: one coordinator (lostAfterMs 120 s, no lease check:
// liveness is not what is measured), heartbeat 30 s (the ingest this machine can follow), churn 100/s; first paint,
// frames, the page's main-thread time, SSE bytes/s, and what a page that connects costs the coordinator (its first
// snapshot). With --profile, where the page's CPU goes (a CDP profile of a reload and of the streaming window). With
// --compare DIR, another build of the page (DIR: its dist) is measured too, alternating with this one against the same
// coordinator (a proxy serves DIR's files and passes /api on), so a before/after of the page shares one machine load.
import { readFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { loadavg } from 'node:os';
import { extname, join } from 'node:path';
import { cleanupAll, startNatsServer } from '../harness/index.ts';
import { cpuMs, ProcessSampler, startCoordinatorProcess } from './coordinators.ts';
import { measureDashboard } from './dashboard.ts';
import { Fleet } from './fleet.ts';
import { ViewWatch } from './view-watch.ts';

const args = process.argv.slice(2);
const hosts = Number(args.find((a) => /^\d+$/.test(a)) ?? 10000);
const profile = args.includes('--profile');
const compareIndex = args.indexOf('--compare');
const compareDir = compareIndex === -1 ? undefined : args[compareIndex + 1];

/** What a page is sent in `ms`, by part of the deltas (bytes of each field's JSON), and frames by event. */
function bytesByPart(url: string, ms: number): Promise<Record<string, number>> {
  return new Promise((resolve) => {
    const parts: Record<string, number> = {};
    let buffer = '';
    let started = false;
    const req = request(`${url}/api/events/stream`, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (\w+)$/m.exec(block)?.[1] ?? 'comment';
          if (event === 'snapshot' && !started) {
            started = true;
            setTimeout(() => {
              req.destroy();
              resolve(Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, Math.round(v / 1024 / (ms / 1000))])));
            }, ms);
            continue;
          }
          parts[`frames:${event}`] = (parts[`frames:${event}`] ?? 0) + block.length + 2;
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event !== 'delta' || data === undefined) continue;
          for (const [k, v] of Object.entries(JSON.parse(data) as Record<string, unknown>))
            parts[k] = (parts[k] ?? 0) + JSON.stringify(v).length;
        }
      });
    });
    req.on('error', () => resolve(parts));
    req.end();
  });
}

/** Serves `dir`'s files, and passes /api/* (the SSE stream included) on to `target`. */
async function servePage(dir: string, target: string): Promise<{ url: string; server: Server }> {
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json' };
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path.startsWith('/api/')) {
      const up = request(`${target}${req.url}`, { headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.on('close', () => up.destroy());
      up.end();
      return;
    }
    readFile(join(dir, path === '/' ? 'index.html' : path))
      .then((body) => res.writeHead(200, { 'content-type': types[extname(path) || '.html'] ?? 'application/octet-stream' }).end(body))
      .catch(() => res.writeHead(404).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { url: `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`, server };
}
const load = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(' ');
try {
  const server = await startNatsServer();
  const c = await startCoordinatorProcess(server.url, 'd1', { liveness: { lostAfterMs: 120_000, leaseExpiry: false } });
  await c.ready;
  const w = new ViewWatch(c.url);
  await w.open();
  const fleet = await Fleet.start({ natsUrl: server.url, workers: Math.ceil(hosts / 2500), heartbeatMs: 30_000 });
  const t0 = performance.now();
  await fleet.grow(hosts);
  await w.until(() => w.nodes.size >= hosts, 90_000, 'all shown').catch((e: unknown) => console.log(String(e)));
  console.log(`${w.nodes.size} shown, ${w.ready()} ready, ${Math.round(performance.now() - t0)} ms after grow; load ${load()}`);
  fleet.churn(100);
  await new Promise((r) => setTimeout(r, 3000));
  // A page connecting: its first snapshot, as the coordinator serves it (the coordinator's CPU meanwhile includes its ingest).
  for (let i = 0; i < 3; i++) {
    const late = new ViewWatch(c.url);
    const cpu0 = cpuMs(c.process.pid);
    const s0 = performance.now();
    await late.open();
    const ms = Math.round((late.firstSnapshot?.at ?? Number.NaN) - s0);
    console.log(
      `first snapshot: ${late.firstSnapshot?.nodes} rows, ${(late.bytes / 1024).toFixed(0)} KiB, ${ms} ms to a client, coordinator CPU meanwhile ${Math.round(cpuMs(c.process.pid) - cpu0)} ms; load ${load()}`,
    );
    late.close();
  }
  const b0 = w.bytes;
  const s = new ProcessSampler([c.process.pid]);
  const t1 = performance.now();
  await new Promise((r) => setTimeout(r, 10_000));
  const u = s.stop().get(c.process.pid);
  console.log(
    `SSE ${((w.bytes - b0) / 1024 / ((performance.now() - t1) / 1000)).toFixed(1)} KiB/s per client; coordinator ${u?.cpuMsPerSecond} ms/s CPU, RSS ${u?.rssMaxMiB} MiB; load ${load()}`,
  );
  console.log(`SSE KiB/s by part (a delta's fields, frames by event): ${JSON.stringify(await bytesByPart(c.url, 10_000))}; load ${load()}`);
  const other = compareDir === undefined ? undefined : await servePage(compareDir, c.url);
  for (let round = 0; round < (other === undefined ? 1 : 2); round++) {
    if (other !== undefined) {
      const o = await measureDashboard(other.url, 10);
      console.log(`page of ${compareDir}: ${JSON.stringify(o)}; load ${load()}`);
    }
    const d = await measureDashboard(c.url, 10, { profile: profile && round === 0 });
    const { profile: p, ...figures } = d;
    console.log(`${other === undefined ? '' : 'this page: '}${JSON.stringify(figures)}; load ${load()}`);
    if (p !== undefined)
      for (const [phase, summary] of Object.entries(p)) {
        console.log(`profile ${phase}: ${summary.totalMs} ms sampled`);
        console.log(`  self:      ${summary.self.map(([k, v]) => `${v} ${k}`).join('\n             ')}`);
        console.log(`  inclusive: ${summary.inclusive.map(([k, v]) => `${v} ${k}`).join('\n             ')}`);
      }
  }
  other?.server.close();
  fleet.churn(0);
  await fleet.stop();
} finally {
  await cleanupAll();
}
