import { AllocationStatusSchema, NodeIdSchema, RequestIdSchema, TenantIdSchema } from '@allot/core';
import { MAX_ALLOCATIONS_PAGE } from '@allot/protocol';
import { COMMON_OPTIONS, parseArgs, parseInteger, tryParse, usageError } from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import type { CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';
import { renderAllocationTable } from '../render/allocations.ts';
import { requestAndPrint, withSession } from '../run-request.ts';
import { pagedAllocations } from './allocation-pages.ts';
import type { Command } from './command.ts';

const STATUSES = ['live', ...AllocationStatusSchema.options] as const;

const HELP = `Usage: allot allocations [--tenant <id>] [--status ${STATUSES.join('|')}] [--request <id>] [--node <id> | --label k=v...] [--limit n] [--cursor c | --all] [-o wide]

Lists the allocations the ready nodes' agents hold (asked of every one of them; a node that does not answer is left
out), in node order: one row per allocation (CPUS: the cores an exclusive one is pinned to).

  --tenant <id>     only this tenant's
  --status <s>      live (the default: active, reserved and releasing) or one status
  --request <id>    only the allocation made by this request id
  --limit <n>       at most n (1 to ${MAX_ALLOCATIONS_PAGE}, default 500) a page
  --node <id>       only this node's (only its agent is asked)
  --label <k=v>     only nodes with this label (repeatable: all of them)
  --cursor <c>      the page after the one that printed "more: --cursor c" (nodes in id order, then allocations)
  --all             every page, one after another
  -o wide           also priority, NUMA nodes and when a reservation expires

${CONNECTION_HELP}`;

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...CONNECTION_OPTIONS,
  tenant: { type: 'string' },
  status: { type: 'string' },
  request: { type: 'string' },
  limit: { type: 'string' },
  node: { type: 'string' },
  label: { type: 'string', multiple: true },
  cursor: { type: 'string' },
  all: { type: 'boolean' },
  output: { type: 'string', short: 'o' },
} as const;

const DEFAULT_LIMIT = 500;

/** --label k=v, repeatable: a node must carry every one. */
function parseLabels(
  given: readonly string[] | undefined,
): { ok: true; value: Record<string, string> | undefined } | { ok: false; message: string } {
  if (given === undefined) return { ok: true, value: undefined };
  const labels: Record<string, string> = {};
  for (const l of given) {
    const i = l.indexOf('=');
    if (i <= 0) return { ok: false, message: `--label: "${l}" is not key=value` };
    labels[l.slice(0, i)] = l.slice(i + 1);
  }
  return { ok: true, value: labels };
}

export const allocationsCommand: Command = {
  name: 'allocations',
  summary: "what the nodes hold: every agent's allocations, by tenant, status or request id",
  help: HELP,
  async run(args, ctx: CliContext) {
    const parsed = tryParse(() => parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }));
    if (!parsed.ok) return usageError(ctx, 'allocations', parsed.message);
    const v = parsed.value.values;
    if (v.help) {
      ctx.out(HELP);
      return EXIT.ok;
    }
    if (v.tenant !== undefined && !TenantIdSchema.safeParse(v.tenant).success)
      return usageError(ctx, 'allocations', `--tenant: "${v.tenant}" is not a tenant id (letters, digits, "_" and "-")`);
    if (v.request !== undefined && !RequestIdSchema.safeParse(v.request).success)
      return usageError(ctx, 'allocations', `--request: "${v.request}" is not a request id`);
    const status = v.status ?? 'live';
    if (!(STATUSES as readonly string[]).includes(status))
      return usageError(ctx, 'allocations', `--status: "${status}" is not one of ${STATUSES.join(', ')}`);
    const limit = v.limit === undefined ? undefined : parseInteger('limit', v.limit, 1, MAX_ALLOCATIONS_PAGE);
    if (limit !== undefined && !limit.ok) return usageError(ctx, 'allocations', limit.message);
    if (v.output !== undefined && v.output !== 'wide')
      return usageError(ctx, 'allocations', `-o: "${v.output}" is not wide (use --json for JSON)`);
    if (v.node !== undefined && !NodeIdSchema.safeParse(v.node).success)
      return usageError(ctx, 'allocations', `--node: "${v.node}" is not a node id (letters, digits, "_" and "-")`);
    if (v.node !== undefined && v.label !== undefined) return usageError(ctx, 'allocations', '--node and --label exclude each other');
    if (v.cursor !== undefined && v.all === true) return usageError(ctx, 'allocations', '--cursor and --all exclude each other');
    const labels = parseLabels(v.label);
    if (!labels.ok) return usageError(ctx, 'allocations', labels.message);
    const request = {
      status,
      ...(v.tenant === undefined ? {} : { tenantId: v.tenant }),
      ...(v.request === undefined ? {} : { requestId: v.request }),
      ...(limit === undefined ? {} : { limit: limit.value }),
      ...(v.node === undefined ? {} : { nodeId: v.node }),
      ...(labels.value === undefined ? {} : { labels: labels.value }),
      ...(v.cursor === undefined ? {} : { cursor: v.cursor }),
    };
    return withSession(ctx, 'allocations', v, (s) =>
      requestAndPrint(
        ctx,
        'allocations',
        pagedAllocations(s, { all: v.all === true, note: ctx.err }),
        'allocations',
        request,
        v.json === true,
        (r) => {
          if (r.allocations.length === 0) return 'no allocations';
          const table = renderAllocationTable(r.allocations, { now: ctx.now(), wide: v.output === 'wide' });
          // The reply carries no total: a full page says there may be more rather than pretending it is all.
          const cap = limit?.value ?? DEFAULT_LIMIT;
          return r.allocations.length >= cap
            ? `${table}\n... the first ${cap} are listed; there may be more not shown (--limit, up to ${MAX_ALLOCATIONS_PAGE})`
            : table;
        },
      ),
    );
  },
};
