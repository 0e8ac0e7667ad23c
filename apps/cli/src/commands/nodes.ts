import { NodeLivenessSchema, NodeStateSchema } from '@allot/core';
import { COMMON_OPTIONS, parseArgs, tryParse, usageError } from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import { EXIT } from '../exit-codes.ts';
import { renderNodes } from '../render/nodes.ts';
import { requestAndPrint, withSession } from '../run-request.ts';
import type { Command } from './command.ts';

const HELP = `Usage: allot nodes [--state ready|suspect|lost|draining|decommissioned] [--liveness ready|suspect|lost] [--label key=value ...] [-o wide]

Every node the coordinators know: state, health, cordon, memory and vCPUs as committed/effective/used
(effective = (capacity - reserve) x overcommit), labels, and when it last reported. The state is the operator's
word over the heartbeats: decommissioned (allot node decommission; shown until nothing of it remains), then lost
(silent past the coordinators' lostAfterMs, 15 s by default) and suspect (3 heartbeats missed), then draining
(cordoned), else ready.

  --state <s>         only nodes in this state
  --liveness <l>      only nodes of this liveness (heartbeats alone)
  --label key=value   only nodes with this label (repeatable: all must match)
  -o wide             also the free memory and free hugepages of each NUMA node (0:656 MiB 1:6.5 GiB;
                      2Mi 0:56 1:256), '-' for a node whose agent publishes no per-node figures

${CONNECTION_HELP}`;

export const nodesCommand: Command = {
  name: 'nodes',
  summary: 'list the nodes with their health and usage',
  help: HELP,
  async run(args, ctx) {
    const parsed = tryParse(() =>
      parseArgs({
        args,
        options: {
          ...COMMON_OPTIONS,
          ...CONNECTION_OPTIONS,
          liveness: { type: 'string' },
          state: { type: 'string' },
          label: { type: 'string', multiple: true },
          output: { type: 'string', short: 'o' },
        },
        strict: true,
        allowPositionals: false,
      }),
    );
    if (!parsed.ok) return usageError(ctx, 'nodes', parsed.message);
    const v = parsed.value.values;
    if (v.help) {
      ctx.out(HELP);
      return EXIT.ok;
    }
    if (v.output !== undefined && v.output !== 'wide')
      return usageError(ctx, 'nodes', `-o: "${v.output}" is not wide (use --json for JSON)`);
    const request: { liveness?: string; state?: string; labels?: Record<string, string> } = {};
    if (v.state !== undefined) {
      if (!NodeStateSchema.safeParse(v.state).success)
        return usageError(ctx, 'nodes', `--state: "${v.state}" is not ready, suspect, lost, draining or decommissioned`);
      request.state = v.state;
    }
    if (v.liveness !== undefined) {
      if (!NodeLivenessSchema.safeParse(v.liveness).success)
        return usageError(ctx, 'nodes', `--liveness: "${v.liveness}" is not ready, suspect or lost`);
      request.liveness = v.liveness;
    }
    for (const label of v.label ?? []) {
      const eq = label.indexOf('=');
      if (eq <= 0) return usageError(ctx, 'nodes', `--label: "${label}" is not key=value`);
      request.labels = { ...request.labels, [label.slice(0, eq)]: label.slice(eq + 1) };
    }
    return withSession(ctx, 'nodes', v, (session) =>
      requestAndPrint(ctx, 'nodes', session, 'nodes', request, v.json === true, (reply) =>
        renderNodes(reply.nodes, ctx.now(), { wide: v.output === 'wide' }),
      ),
    );
  },
};
