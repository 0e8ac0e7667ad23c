import { randomUUID } from 'node:crypto';
import { NodeIdSchema, RequestIdSchema } from '@allot/core';
import type { HostHealth } from '@allot/protocol';
import { COMMON_OPTIONS, parseArgs, positionalsExactly, tryParse, usageError } from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import { EXIT } from '../exit-codes.ts';
import { renderPairs } from '../format/table.ts';
import { formatHealth, renderRemaining } from '../render/nodes.ts';
import { reportError } from '../report.ts';
import { requestAndPrint, withSession } from '../run-request.ts';
import type { Session } from '../session.ts';
import { evacuateAndPrint } from './move.ts';
import type { Command } from './command.ts';

type Verb = 'cordon' | 'uncordon' | 'drain';

const WHAT: Record<Verb, string> = {
  cordon: 'Marks the node unschedulable: nothing new is placed on it; what runs there stays.',
  uncordon: 'Makes the node schedulable again.',
  drain:
    'Cordons the node and lists what is still on it, for the operator to move or release. With --evacuate, then\nholds a destination for each (allot evacuate, same request id) and prints the plan of moves to confirm.',
};

function help(verb: Verb): string {
  return `Usage: allot ${verb} <node> [--reason <text>] [--request-id <id>]${verb === 'drain' ? ' [--evacuate]' : ''}

${WHAT[verb]}

  --reason <text>     why (kept in the events stream)
${verb === 'drain' ? '  --evacuate          then evacuate the node (exit 1 when some VM got no destination)\n' : ''}  --request-id <id>   idempotency key (default: a new UUID)

${CONNECTION_HELP}`;
}

function plural(n: number): string {
  return `${n} allocation${n === 1 ? '' : 's'}`;
}

function renderHealth(h: HostHealth): string {
  return renderPairs([
    ['node', h.nodeId],
    ['cordoned', h.cordoned ? 'yes' : 'no'],
    ['health', formatHealth(h.health)],
  ]);
}

function nodeCommand(verb: Verb, summary: string): Command {
  const text = help(verb);
  return {
    name: verb,
    summary,
    help: text,
    async run(args, ctx) {
      const parsed = tryParse(() =>
        parseArgs({
          args,
          options: {
            ...COMMON_OPTIONS,
            ...CONNECTION_OPTIONS,
            reason: { type: 'string' },
            'request-id': { type: 'string' },
            ...(verb === 'drain' ? { evacuate: { type: 'boolean' } } : {}),
          },
          strict: true,
          allowPositionals: true,
        }),
      );
      if (!parsed.ok) return usageError(ctx, verb, parsed.message);
      const v = parsed.value.values;
      if (v.help) {
        ctx.out(text);
        return EXIT.ok;
      }
      const positionals = positionalsExactly(parsed.value.positionals, ['node']);
      if (!positionals.ok) return usageError(ctx, verb, positionals.message);
      const nodeId = positionals.value[0] ?? '';
      const node = NodeIdSchema.safeParse(nodeId);
      if (!node.success) return usageError(ctx, verb, `"${nodeId}": ${node.error.issues[0]?.message ?? 'not a node id'}`);
      const requestId = v['request-id'] ?? randomUUID();
      if (!RequestIdSchema.safeParse(requestId).success) return usageError(ctx, verb, `--request-id: "${requestId}" is not a request id`);
      if (v.reason !== undefined && v.reason.length > 256) return usageError(ctx, verb, '--reason: at most 256 characters');
      const request = { requestId, nodeId, ...(v.reason === undefined ? {} : { reason: v.reason }) };
      const json = v.json === true;
      const evacuate = (v as { evacuate?: boolean }).evacuate === true;
      return withSession(ctx, verb, v, async (session) => {
        if (verb !== 'drain' || !evacuate) return drainOr(session);
        // Cordon (drain) first, so nothing new lands there, then the plan of moves.
        const drained = await session.call('drain', request);
        if (!drained.ok) return reportError(ctx, verb, drained.error, json);
        if (!json)
          ctx.out(
            `${drained.value.nodeId} ${drained.value.cordoned ? 'cordoned' : 'NOT cordoned'}; ${drained.value.remainingCount ?? drained.value.remaining.length} allocation(s) on it; evacuating`,
          );
        return evacuateAndPrint(ctx, session, { requestId, nodeId }, json);
      });
      function drainOr(session: Session): Promise<number> {
        return verb === 'drain'
          ? requestAndPrint(ctx, verb, session, 'drain', request, json, (d) =>
              [
                `${d.nodeId} ${d.cordoned ? 'cordoned' : 'NOT cordoned'}; ${plural(d.remainingCount ?? d.remaining.length)} still on it`,
                ...renderRemaining(d.remaining, d.remainingCount, ctx.now()),
              ].join('\n\n'),
            )
          : requestAndPrint(ctx, verb, session, verb, request, json, renderHealth);
      }
    },
  };
}

export const cordonCommand = nodeCommand('cordon', 'stop placing on a node');
export const uncordonCommand = nodeCommand('uncordon', 'place on a node again');
export const drainCommand = nodeCommand('drain', 'cordon a node and list what is still on it');
