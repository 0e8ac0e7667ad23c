// `node test/fleet/cold-start-alone.ts [hosts]`: the cold-start figure of docs/benchmarks.md ("Fleet") without the rest of the run.
// Cold start with 10,000 hosts: one coordinator follows the fleet (heartbeat 30 s, liveness relaxed as in dash10k.ts);
// then a second coordinator process starts: spawn -> `coordinator ready` -> its feed shows every host ready.
import { cleanupAll, startNatsServer } from '../harness/index.ts';
import { ProcessSampler, startCoordinatorProcess } from './coordinators.ts';
import { Fleet } from './fleet.ts';
import { ViewWatch } from './view-watch.ts';
const hosts = Number(process.argv[2] ?? 10000);
const liveness = { liveness: { lostAfterMs: 120_000, leaseExpiry: false } };
try {
  const server = await startNatsServer();
  const c = await startCoordinatorProcess(server.url, 'w1', liveness);
  await c.ready;
  const w = new ViewWatch(c.url);
  await w.open();
  const fleet = await Fleet.start({ natsUrl: server.url, workers: Math.ceil(hosts / 2500), heartbeatMs: 30_000 });
  await fleet.grow(hosts);
  await w.until(() => w.ready() >= hosts, 90_000, 'all ready');
  w.close();
  const cold = await startCoordinatorProcess(server.url, 'cold', liveness);
  const readyAt = await cold.ready;
  const cw = new ViewWatch(cold.url);
  await cw.open();
  await cw.until(() => cw.ready() >= hosts, 90_000, 'all ready').catch((e: unknown) => console.log(String(e)));
  const doneAt = performance.now();
  const rss = new ProcessSampler([cold.process.pid]).stop().get(cold.process.pid)?.rssEndMiB;
  const spawnWall = Date.now() - (performance.now() - cold.spawnedAt);
  const timeline = cold.process.lines
    .filter((l): l is Record<string, unknown> => typeof l === 'object' && typeof l['time'] === 'number')
    .map((l) => `${String(l['msg'])} ${Math.round((l['time'] as number) - spawnWall)}`)
    .join(', ');
  console.log(
    `cold start ${hosts} hosts: ready ${Math.round(readyAt - cold.spawnedAt)} ms, complete view ${Math.round(doneAt - cold.spawnedAt)} ms (${cw.ready()} ready), RSS ${rss} MiB; ${timeline}`,
  );
  cw.close();
  await fleet.stop();
} finally {
  await cleanupAll();
}
