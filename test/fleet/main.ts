// `pnpm fleet --hosts 10000`: the fleet simulator against real coordinator processes and a real nats-server; prints
// every figure beside its target (docs/simulation.md, "The fleet"; figures in docs/benchmarks.md).
//   --hosts N (10000)  --coordinators 2  --heartbeat-ms 2000  --idle-status-ms (the heartbeat)  --churn 100 (changes/s)
//   --workers ceil(N/2500)
//   --steady-s 10  --sequential 100  --pipelined 2000  --window 64  --dashboard-s 10  --no-dashboard
import { parseArgs } from 'node:util';
import { formatRows, runFleet } from './run.ts';

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '10000' },
    coordinators: { type: 'string', default: '2' },
    'heartbeat-ms': { type: 'string', default: '2000' },
    'idle-status-ms': { type: 'string' },
    churn: { type: 'string', default: '100' },
    workers: { type: 'string' },
    'steady-s': { type: 'string', default: '10' },
    sequential: { type: 'string', default: '100' },
    pipelined: { type: 'string', default: '2000' },
    window: { type: 'string', default: '64' },
    'dashboard-s': { type: 'string', default: '10' },
    'no-dashboard': { type: 'boolean', default: false },
  },
});
const int = (name: keyof typeof values, v: string | boolean | undefined): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name}: a whole number, not ${String(v)}`);
    process.exit(2);
  }
  return n;
};
const hosts = int('hosts', values.hosts);
const rows = await runFleet({
  hosts,
  sizes: [...new Set([100, 1_000, hosts].filter((n) => n <= hosts))],
  coordinators: Math.max(1, int('coordinators', values.coordinators)),
  heartbeatMs: int('heartbeat-ms', values['heartbeat-ms']),
  ...(values['idle-status-ms'] === undefined ? {} : { idleStatusMs: int('idle-status-ms', values['idle-status-ms']) }),
  churnPerSecond: int('churn', values.churn),
  workers: values.workers === undefined ? Math.max(1, Math.ceil(hosts / 2_500)) : int('workers', values.workers),
  steadySeconds: int('steady-s', values['steady-s']),
  sequentialPlaces: int('sequential', values.sequential),
  pipelinedPlaces: int('pipelined', values.pipelined),
  window: Math.max(1, int('window', values.window)),
  dashboardSeconds: int('dashboard-s', values['dashboard-s']),
  dashboard: !values['no-dashboard'],
});
console.log(`\n${formatRows(rows)}`);
