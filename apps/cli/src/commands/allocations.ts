import { AllocationStatusSchema, RequestIdSchema, TenantIdSchema, type Allocation } from '@allot/core';
import { MAX_ALLOCATIONS_PAGE } from '@allot/protocol';
import { COMMON_OPTIONS, parseArgs, parseInteger, tryParse, usageError } from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import type { CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';
import { renderTable } from '../format/table.ts';
import { formatMiB } from '../format/units.ts';
import { requestAndPrint, withSession } from '../run-request.ts';
import type { Command } from './command.ts';

const STATUSES = ['live', ...AllocationStatusSchema.options] as const;

const HELP = `Usage: allot allocations [--tenant <id>] [--status ${STATUSES.join('|')}] [--request <id>] [--limit n]

Lists the allocations the ready nodes' agents hold (asked of every one of them; a node that does not answer is left
out), in node order.

  --tenant <id>     only this tenant's
  --status <s>      live (the default: active, reserved and releasing) or one status
  --request <id>    only the allocation made by this request id
  --limit <n>       at most n (1 to ${MAX_ALLOCATIONS_PAGE}, default 500)

${CONNECTION_HELP}`;

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...CONNECTION_OPTIONS,
  tenant: { type: 'string' },
  status: { type: 'string' },
  request: { type: 'string' },
  limit: { type: 'string' },
} as const;

export function renderAllocations(allocations: readonly Allocation[]): string {
  if (allocations.length === 0) return 'no allocations';
  return renderTable(
    [{ header: 'ALLOCATION' }, { header: 'TENANT' }, { header: 'REQUEST' }, { header: 'STATUS' }, { header: 'MEMORY', align: 'right' }, { header: 'VCPUS', align: 'right' }, { header: 'PRIORITY', align: 'right' }],
    allocations.map((a) => [a.id, a.tenantId, a.requestId, a.status, formatMiB(a.granted.memoryMiB), `${a.granted.vcpus}${a.cpu?.mode === 'exclusive' ? ' excl' : ''}`, String(a.priority)]),
  );
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
    if (v.tenant !== undefined && !TenantIdSchema.safeParse(v.tenant).success) return usageError(ctx, 'allocations', `--tenant: "${v.tenant}" is not a tenant id (letters, digits, "_" and "-")`);
    if (v.request !== undefined && !RequestIdSchema.safeParse(v.request).success) return usageError(ctx, 'allocations', `--request: "${v.request}" is not a request id`);
    const status = v.status ?? 'live';
    if (!(STATUSES as readonly string[]).includes(status)) return usageError(ctx, 'allocations', `--status: "${status}" is not one of ${STATUSES.join(', ')}`);
    const limit = v.limit === undefined ? undefined : parseInteger('limit', v.limit, 1, MAX_ALLOCATIONS_PAGE);
    if (limit !== undefined && !limit.ok) return usageError(ctx, 'allocations', limit.message);
    const request = {
      status,
      ...(v.tenant === undefined ? {} : { tenantId: v.tenant }),
      ...(v.request === undefined ? {} : { requestId: v.request }),
      ...(limit === undefined ? {} : { limit: limit.value }),
    };
    return withSession(ctx, 'allocations', v, (s) => requestAndPrint(ctx, 'allocations', s, 'allocations', request, v.json === true, (r) => renderAllocations(r.allocations)));
  },
};
