import { NodeIdSchema } from '@allot/core';
import { COMMON_OPTIONS, parseArgs, tryParse, usageError } from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import { EXIT } from '../exit-codes.ts';
import { reportError } from '../report.ts';
import { renderClusterUsage, renderCores, renderEfficiency, renderNodeUsage } from '../render/usage.ts';
import { requestAndPrint, withSession } from '../run-request.ts';
import type { Command } from './command.ts';

const HELP = `Usage: allot usage [--efficiency | --node <id> [--cores]]

  (no flags)       the cluster: nodes by liveness, memory and vCPUs committed/effective/used, allocations
  --efficiency     the cluster's efficiency over the schedulable nodes: used/committed, used/effective, how many
                   more of the most common VM fit, and the share of free capacity stranded for it
  --node <id>      one node: its usage snapshot, reserves, overcommit, per-tenant use
  --cores          with --node: one row per logical core (physical core, NUMA node, socket, role
                   shared/exclusive/reserved, the allocation holding it, utilization)

${CONNECTION_HELP}`;

export const usageCommand: Command = {
  name: 'usage',
  summary: "cluster usage, or one node's (--node), or its cores (--cores)",
  help: HELP,
  async run(args, ctx) {
    const parsed = tryParse(() =>
      parseArgs({
        args,
        options: {
          ...COMMON_OPTIONS,
          ...CONNECTION_OPTIONS,
          node: { type: 'string' },
          cores: { type: 'boolean' },
          efficiency: { type: 'boolean' },
        },
        strict: true,
        allowPositionals: false,
      }),
    );
    if (!parsed.ok) return usageError(ctx, 'usage', parsed.message);
    const v = parsed.value.values;
    if (v.help) {
      ctx.out(HELP);
      return EXIT.ok;
    }
    const json = v.json === true;
    if (v.efficiency) {
      if (v.node !== undefined || v.cores)
        return usageError(ctx, 'usage', '--efficiency is of the whole cluster: leave out --node and --cores');
      return withSession(ctx, 'usage', v, (session) => requestAndPrint(ctx, 'usage', session, 'efficiency', {}, json, renderEfficiency));
    }
    if (v.node === undefined) {
      if (v.cores) return usageError(ctx, 'usage', '--cores needs --node <id>');
      return withSession(ctx, 'usage', v, (session) => requestAndPrint(ctx, 'usage', session, 'usage', {}, json, renderClusterUsage));
    }
    const nodeId = NodeIdSchema.safeParse(v.node);
    if (!nodeId.success) return usageError(ctx, 'usage', `--node: "${v.node}": ${nodeId.error.issues[0]?.message ?? 'not a node id'}`);
    return withSession(ctx, 'usage', v, async (session) => {
      const reply = await session.call('node', { nodeId: nodeId.data });
      if (!reply.ok) return reportError(ctx, 'usage', reply.error, json);
      if (v.cores) ctx.out(json ? JSON.stringify(reply.value.snapshot.cpu.cores, null, 2) : renderCores(reply.value.snapshot.cpu.cores));
      else ctx.out(json ? JSON.stringify(reply.value, null, 2) : renderNodeUsage(reply.value, ctx.now()));
      return EXIT.ok;
    });
  },
};
