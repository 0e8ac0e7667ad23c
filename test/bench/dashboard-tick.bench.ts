// `pnpm bench dashboard-tick`: the CPU time of one dashboard tick (apps/coordinator/src/http/model.ts) at 1,000 and
// 10,000 nodes, in process: each tick after a quarter-second of a fleet's reports (heartbeats at a 2 s or 30 s
// heartbeat, and 25 changes). CPU time (process.cpuUsage), not wall time, so a loaded machine does not inflate it.
// docs/benchmarks.md, "Fleet": 10,000 nodes went from 52 to 7 ms of CPU per tick with the change-driven tick.
import { ClusterView } from '../../apps/coordinator/src/view.ts';
import { DashboardModel } from '../../apps/coordinator/src/http/model.ts';
import { syntheticSnapshot } from '../../apps/coordinator/src/http/fixtures.ts';

function measure(nodes: number, heartbeatsPerTick: number): string {
  const view = new ClusterView({ lostAfterMs: 15_000 });
  const snapshot = (i: number, seq: number) =>
    syntheticSnapshot({ nodeId: `fleet-${String(i).padStart(5, '0')}`, seq, cores: 64, labels: { zone: `z${i % 3}` }, heartbeatMs: 2_000 });
  for (let i = 0; i < nodes; i++) view.apply(snapshot(i, 1));
  const model = new DashboardModel(view, undefined);
  const t0 = Date.now();
  model.tick(t0);
  const cpu: number[] = [];
  let seq = 2;
  for (let k = 1; k <= 40; k++) {
    for (let j = 0; j < heartbeatsPerTick; j++) view.apply(snapshot(Math.floor(Math.random() * nodes), 1));
    for (let j = 0; j < 25; j++) view.apply(snapshot(Math.floor(Math.random() * nodes), seq++));
    const c0 = process.cpuUsage();
    model.tick(t0 + k * 250);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const sorted = [...cpu].sort((a, b) => a - b);
  const perSecond = cpu.reduce((s, x) => s + x, 0) / 10;
  return `${nodes} nodes, ${heartbeatsPerTick} heartbeats + 25 changes per tick: CPU per tick p50 ${sorted[20]?.toFixed(1)} ms, max ${sorted.at(-1)?.toFixed(1)} ms; ${perSecond.toFixed(0)} ms of CPU per second at 4 ticks/s`;
}

console.log(measure(1_000, 125));
console.log(measure(10_000, 1_250));
console.log(measure(10_000, 83));
