import { COMMON_OPTIONS, parseArgs, tryParse, usageError } from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import { EXIT } from '../exit-codes.ts';
import { renderAudit } from '../render/allocations.ts';
import { reportError } from '../report.ts';
import { withSession } from '../run-request.ts';
import type { Command } from './command.ts';

const HELP = `Usage: allot audit

Compares every ready node's live allocations with the placement intents, as the coordinators' anti-entropy sweep
does, and prints what disagrees, without changing anything:
  orphan              an allocation a coordinator made whose intent is failed, released, missing or on another node
                      (the sweep releases it once it has seen it twice, a grace period apart)
  placement_missing   a placed intent whose node does not list its allocation (the sweep asks the node and, if the
                      allocation ended there, releases the intent and gives the tenant's quota back)
A discrepancy seen once may be a placement in flight; one that stays is what the sweep acts on.

Exit code 0 when nothing disagrees, 1 when anything does (or a node could not be listed), 3 when unreachable.

${CONNECTION_HELP}`;

export const auditCommand: Command = {
  name: 'audit',
  summary: 'print where the agents and the placement intents disagree (read only)',
  help: HELP,
  async run(args, ctx) {
    const parsed = tryParse(() =>
      parseArgs({ args, options: { ...COMMON_OPTIONS, ...CONNECTION_OPTIONS }, strict: true, allowPositionals: false }),
    );
    if (!parsed.ok) return usageError(ctx, 'audit', parsed.message);
    const v = parsed.value.values;
    if (v.help) {
      ctx.out(HELP);
      return EXIT.ok;
    }
    return withSession(ctx, 'audit', v, async (session) => {
      const reply = await session.call('audit', {});
      if (!reply.ok) return reportError(ctx, 'audit', reply.error, v.json === true);
      ctx.out(v.json === true ? JSON.stringify(reply.value, null, 2) : renderAudit(reply.value));
      return reply.value.total > 0 || reply.value.nodesFailed.length > 0 ? EXIT.refused : EXIT.ok;
    });
  },
};
