import type { Health } from '@allot/core';
import { COMMON_OPTIONS, parseArgs, tryParse, usageError } from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import type { CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';
import { requestAndPrint, withSession } from '../run-request.ts';
import type { Command } from './command.ts';

const HELP = `Usage: allot health

The cluster's health as the coordinators see it: the worst of the nodes' health with every reason (each named by its
node), and nodes that stopped reporting (suspect or lost). Exits 0 whatever the health: read it, or --json.

${CONNECTION_HELP}`;

export function renderClusterHealth(health: Health): string {
  const reasons = health.status === 'degraded' || health.status === 'unhealthy' ? health.reasons : [];
  return [`cluster: ${health.status}`, ...reasons.map((r) => `  ${r}`)].join('\n');
}

export const healthCommand: Command = {
  name: 'health',
  summary: "the cluster's health: the worst node's, with every reason",
  help: HELP,
  async run(args, ctx: CliContext) {
    const parsed = tryParse(() =>
      parseArgs({ args, options: { ...COMMON_OPTIONS, ...CONNECTION_OPTIONS }, strict: true, allowPositionals: false }),
    );
    if (!parsed.ok) return usageError(ctx, 'health', parsed.message);
    const v = parsed.value.values;
    if (v.help) {
      ctx.out(HELP);
      return EXIT.ok;
    }
    return withSession(ctx, 'health', v, (s) => requestAndPrint(ctx, 'health', s, 'health', {}, v.json === true, renderClusterHealth));
  },
};
