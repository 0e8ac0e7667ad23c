// `node test/fleet/dashboard-alone.ts [hosts] [--profile]`: the dashboard figures of docs/benchmarks.md ("Fleet")
// without the rest of the run. The dashboard with 10,000 hosts: one coordinator (lostAfterMs 120 s, no lease check:
// liveness is not what is measured), heartbeat 30 s (the ingest this machine can follow), churn 100/s; first paint,
// frames, the page's main-thread time, SSE bytes/s, and what a page that connects costs the coordinator (its first
// snapshot). With --profile, where the page's CPU goes (a CDP profile of a reload and of the streaming window).
import { loadavg } from 'node:os';
import { cleanupAll, startNatsServer } from '../harness/index.ts';
import { cpuMs, ProcessSampler, startCoordinatorProcess } from './coordinators.ts';
import { measureDashboard } from './dashboard.ts';
import { Fleet } from './fleet.ts';
import { ViewWatch } from './view-watch.ts';

const args = process.argv.slice(2);
const hosts = Number(args.find((a) => /^\d+$/.test(a)) ?? 10000);
const profile = args.includes('--profile');
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
  const d = await measureDashboard(c.url, 10, { profile });
  const { profile: p, ...figures } = d;
  console.log(`${JSON.stringify(figures)}; load ${load()}`);
  if (p !== undefined)
    for (const [phase, summary] of Object.entries(p)) {
      console.log(`profile ${phase}: ${summary.totalMs} ms sampled`);
      console.log(`  self:      ${summary.self.map(([k, v]) => `${v} ${k}`).join('\n             ')}`);
      console.log(`  inclusive: ${summary.inclusive.map(([k, v]) => `${v} ${k}`).join('\n             ')}`);
    }
  fleet.churn(0);
  await fleet.stop();
} finally {
  await cleanupAll();
}
