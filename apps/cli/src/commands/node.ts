import { randomUUID } from 'node:crypto';
import { NodeIdSchema, RequestIdSchema } from '@allot/core';
import type { NodeTaintsReply } from '@allot/protocol';
import { COMMON_OPTIONS, parseArgs, tryParse, usageError } from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import { EXIT } from '../exit-codes.ts';
import { parseTaint } from '../parse/placement-terms.ts';
import { renderDecommission, renderRemaining } from '../render/nodes.ts';
import { requestAndPrint, withSession } from '../run-request.ts';
import type { Command } from './command.ts';

const HELP = `Usage: allot node decommission <node> [--reason <text>] [--request-id <id>]
       allot node recommission <node> [--reason <text>] [--request-id <id>]
       allot node taint <node> <key>[=<value>][:NoSchedule] [--reason <text>]
       allot node untaint <node> <key>[:NoSchedule]

  decommission   takes the node out for good, on every coordinator and across restarts. Its agent, when it
                 answers, is cordoned and each pending placement is fenced on it; when the node is lost, its pending
                 placements are failed and its placements given up (quota back) on your word: make sure the host is
                 off first. Lists what remains; the node leaves the view and every count once nothing does. An agent
                 of a decommissioned node that comes back is refused and what it holds is released by the sweep.
                 Safe to run again (a node that was only suspect: once it is lost); run again, it lists what every
                 run failed and gave up, so a reply that was lost can be asked for again.
  recommission   undoes it: the coordinators take the node's reports again; it stays cordoned until
                 'allot uncordon <node>'.
  taint          keeps every place that does not tolerate it (--toleration key=value) off the node, on every
                 coordinator and across restarts; what runs there stays. A taint of the same key replaces it. Refusals
                 name it: "node(s) had untolerated taint {key: value} (reason)".
  untaint        removes the node's taints of that key.
  --reason       why (kept in the record, the events stream and the agent's cordon; a taint's is shown in refusals)
  --request-id   idempotency key (default: a new UUID)

${CONNECTION_HELP}`;

const VERBS = ['decommission', 'recommission', 'taint', 'untaint'] as const;

export const nodeCommand: Command = {
  name: 'node',
  summary: 'decommission a node for good, or recommission it; taint or untaint it',
  help: HELP,
  async run(args, ctx) {
    const parsed = tryParse(() =>
      parseArgs({
        args,
        options: { ...COMMON_OPTIONS, ...CONNECTION_OPTIONS, reason: { type: 'string' }, 'request-id': { type: 'string' } },
        strict: true,
        allowPositionals: true,
      }),
    );
    if (!parsed.ok) return usageError(ctx, 'node', parsed.message);
    const v = parsed.value.values;
    if (v.help) {
      ctx.out(HELP);
      return EXIT.ok;
    }
    const [verb, nodeId, ...rest] = parsed.value.positionals;
    if (verb === undefined || !(VERBS as readonly string[]).includes(verb))
      return usageError(
        ctx,
        'node',
        `expected decommission, recommission, taint or untaint, got ${verb === undefined ? 'nothing' : `"${verb}"`}`,
      );
    const tainting = verb === 'taint' || verb === 'untaint';
    if (nodeId === undefined || rest.length !== (tainting ? 1 : 0))
      return usageError(ctx, 'node', tainting ? `${verb} takes a node and a taint` : `${verb} takes exactly one node`);
    const node = NodeIdSchema.safeParse(nodeId);
    if (!node.success) return usageError(ctx, 'node', `"${nodeId}": ${node.error.issues[0]?.message ?? 'not a node id'}`);
    const requestId = v['request-id'] ?? randomUUID();
    if (!RequestIdSchema.safeParse(requestId).success) return usageError(ctx, 'node', `--request-id: "${requestId}" is not a request id`);
    if (v.reason !== undefined && v.reason.length > 256) return usageError(ctx, 'node', '--reason: at most 256 characters');
    const json = v.json === true;
    if (tainting) {
      const taint = parseTaint(rest[0] as string, v.reason);
      if (!taint.ok) return usageError(ctx, 'node', taint.message);
      const shown = (r: NodeTaintsReply) =>
        r.taints.length === 0
          ? `${r.nodeId}: no taints`
          : `${r.nodeId} taints:\n${r.taints.map((t) => `  ${t.key}=${t.value}:${t.effect}${t.reason === undefined ? '' : `  (${t.reason})`}`).join('\n')}`;
      return withSession(ctx, 'node', v, (session) =>
        verb === 'taint'
          ? requestAndPrint(ctx, 'node', session, 'node.taint', { requestId, nodeId, taint: taint.value }, json, shown)
          : requestAndPrint(ctx, 'node', session, 'node.untaint', { requestId, nodeId, key: taint.value.key }, json, shown),
      );
    }
    const request = { requestId, nodeId, ...(v.reason === undefined ? {} : { reason: v.reason }) };
    return withSession(ctx, 'node', v, (session) =>
      verb === 'decommission'
        ? requestAndPrint(ctx, 'node', session, 'node.decommission', request, json, (d) =>
            [renderDecommission(d), ...renderRemaining(d.remaining, d.remainingCount, ctx.now())].join('\n\n'),
          )
        : requestAndPrint(ctx, 'node', session, 'node.recommission', request, json, (r) =>
            r.wasDecommissioned
              ? `${r.nodeId} recommissioned: the coordinators take its reports again; it stays cordoned until 'allot uncordon ${r.nodeId}'`
              : `${r.nodeId} was not decommissioned: nothing changed`,
          ),
    );
  },
};
