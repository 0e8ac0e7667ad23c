// `node test/fleet/dashboard-alone.ts [hosts]`: the dashboard figures of docs/benchmarks.md ("Fleet") without the rest of the run.
// The dashboard with 10,000 hosts: one coordinator (lostAfterMs 120 s, no lease check: liveness is not what is
// measured), heartbeat 30 s (the ingest this machine can follow), churn 100/s; first paint, frames, SSE bytes/s.
import { cleanupAll, startNatsServer } from '../harness/index.ts';
import { startCoordinatorProcess } from './coordinators.ts';
import { measureDashboard } from './dashboard.ts';
import { Fleet } from './fleet.ts';
import { ViewWatch } from './view-watch.ts';
import { ProcessSampler } from './coordinators.ts';
const hosts = Number(process.argv[2] ?? 10000);
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
  console.log(`${w.nodes.size} shown, ${w.ready()} ready, ${Math.round(performance.now() - t0)} ms after grow`);
  fleet.churn(100);
  await new Promise((r) => setTimeout(r, 3000));
  const b0 = w.bytes;
  const s = new ProcessSampler([c.process.pid]);
  const t1 = performance.now();
  await new Promise((r) => setTimeout(r, 10_000));
  const u = s.stop().get(c.process.pid);
  console.log(
    `SSE ${((w.bytes - b0) / 1024 / ((performance.now() - t1) / 1000)).toFixed(1)} KiB/s per client; coordinator ${u?.cpuMsPerSecond} ms/s CPU, RSS ${u?.rssMaxMiB} MiB`,
  );
  const d = await measureDashboard(c.url, 10);
  console.log(JSON.stringify(d));
  fleet.churn(0);
  await fleet.stop();
} finally {
  await cleanupAll();
}
