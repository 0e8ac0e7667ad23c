import { NodeLivenessSchema, NodeStateSchema } from '@allot/core';
import { COMMON_OPTIONS, parseArgs, tryParse, usageError } from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import { EXIT } from '../exit-codes.ts';
import { renderNodes } from '../render/nodes.ts';
import { requestAndPrint, withSession } from '../run-request.ts';
import type { Command } from './command.ts';

const HELP = `Usage: allot nodes [--state ready|suspect|lost|draining|decommissioned] [--liveness ready|suspect|lost] [--label key=value ...]

Every node the coordinators know: state, health, cordon, memory and vCPUs as committed/effective/used
(effective = (capacity - reserve) x overcommit), labels, and when it last reported. The state is the operator's
word over the heartbeats: decommissioned (allot node decommission; shown until nothing of it remains), then lost
(silent past the coordinators' lostAfterMs, 15 s by default) and suspect (3 heartbeats missed), then draining
(cordoned), else ready.

  --state <s>         only nodes in this state
  --liveness <l>      only nodes of this liveness (heartbeats alone)
  --label key=value   only nodes with this label (repeatable: all must match)

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
      requestAndPrint(ctx, 'nodes', session, 'nodes', request, v.json === true, (reply) => renderNodes(reply.nodes, ctx.now())),
    );
  },
};
