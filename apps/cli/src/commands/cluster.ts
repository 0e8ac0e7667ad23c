import { existsSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, parseInteger, tryParse, usageError } from '../args.ts';
import { runCluster } from '../cluster/run-cluster.ts';
import { EXIT } from '../exit-codes.ts';
import type { Command } from './command.ts';

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

const HELP = `Usage: allot cluster [--port 4222] [--dashboard-port 7080 | --no-dashboard] [--dir .allot/cluster] [--config infra/local/cluster.json]

A local allot cluster on this machine: a nats-server with JetStream, one coordinator and the agents of the cluster
file (by default three: 'local' with the real host probe, 'sim-large' and 'sim-small' with simulated host sizes).
Waits until the coordinator reports every node ready, prints the nodes and what to try next, then runs until Ctrl-C
or SIGTERM, which stop the coordinator, then the agents (they flush their ledgers), then nats-server.

  --port <n>             nats-server client port on 127.0.0.1 (default 4222); a taken port is an error
  --dir <path>           where the cluster lives (default .allot/cluster): nats/ (JetStream), logs/<name>.log,
                         config/ (generated configs), <nodeId>/ (each agent's ledger)
  --config <file>        the cluster file (default infra/local/cluster.json of this repository)
  --ready-timeout <ms>   how long to wait for every node to be ready (default 90000)
  --dashboard-port <n>   the coordinator serves the live dashboard on http://127.0.0.1:<n>/ (default 7080)
  --no-dashboard         no dashboard (the coordinator's HTTP server stays off, as in production by default)
  --secure               generated credentials and TLS (<dir>/security, kept across runs): every process connects
                         with its own nkey and client certificate and only its role's permissions (docs/security.md)
  -h, --help             this help

Exit codes: 0 stopped by Ctrl-C or SIGTERM; 1 something failed to start or died (its log is shown); 2 usage error.`;

/** nats-server: NATS_SERVER_BIN, else the first on PATH, else the Debian package's /usr/sbin/nats-server. */
function natsServerBinary(env: Readonly<Record<string, string | undefined>>): string {
  const fromEnv = env['NATS_SERVER_BIN'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (dir !== '' && existsSync(join(dir, 'nats-server'))) return join(dir, 'nats-server');
  }
  return '/usr/sbin/nats-server';
}

export const clusterCommand: Command = {
  name: 'cluster',
  summary: 'run a local cluster: nats-server, a coordinator and three agents',
  help: HELP,
  async run(args, ctx) {
    const parsed = tryParse(() =>
      parseArgs({
        args,
        options: {
          help: { type: 'boolean', short: 'h' },
          port: { type: 'string' },
          dir: { type: 'string' },
          config: { type: 'string' },
          'ready-timeout': { type: 'string' },
          'dashboard-port': { type: 'string' },
          'no-dashboard': { type: 'boolean' },
          secure: { type: 'boolean' },
        },
        strict: true,
        allowPositionals: false,
      }),
    );
    if (!parsed.ok) return usageError(ctx, 'cluster', parsed.message);
    const v = parsed.value.values;
    if (v.help) {
      ctx.out(HELP);
      return EXIT.ok;
    }
    if (v['dashboard-port'] !== undefined && v['no-dashboard'])
      return usageError(ctx, 'cluster', '--dashboard-port and --no-dashboard exclude each other');
    const dashboardPort =
      v['dashboard-port'] === undefined
        ? { ok: true as const, value: 7080 }
        : parseInteger('dashboard-port', v['dashboard-port'], 1, 65_535);
    if (!dashboardPort.ok) return usageError(ctx, 'cluster', dashboardPort.message);
    const port = v.port === undefined ? { ok: true as const, value: 4222 } : parseInteger('port', v.port, 1, 65_535);
    if (!port.ok) return usageError(ctx, 'cluster', port.message);
    const readyTimeout =
      v['ready-timeout'] === undefined
        ? { ok: true as const, value: 90_000 }
        : parseInteger('ready-timeout', v['ready-timeout'], 1000, 3_600_000);
    if (!readyTimeout.ok) return usageError(ctx, 'cluster', readyTimeout.message);
    return runCluster(
      {
        port: port.value,
        dashboardPort: v['no-dashboard'] ? undefined : dashboardPort.value,
        dashboardDir: join(repoRoot, 'apps/dashboard/dist'),
        root: resolve(ctx.cwd, v.dir ?? '.allot/cluster'),
        configFile: resolve(ctx.cwd, v.config ?? join(repoRoot, 'infra/local/cluster.json')),
        readyTimeoutMs: readyTimeout.value,
        node: process.execPath,
        agentMain: join(repoRoot, 'apps/agent/src/main.ts'),
        coordinatorMain: join(repoRoot, 'apps/coordinator/src/main.ts'),
        natsServer: natsServerBinary(ctx.env),
        allotCommand: existsSync(join(repoRoot, 'allot')) ? './allot' : 'node apps/cli/src/main.ts',
        secure: v.secure === true,
      },
      ctx,
    );
  },
};
