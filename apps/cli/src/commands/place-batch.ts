import { randomUUID } from 'node:crypto';
import { formatIssues, RequestIdSchema } from '@allot/core';
import { MAX_BATCH_MEMBERS, PlaceBatchRequestSchema, type PlaceBatchReply, type PlaceBatchRequest } from '@allot/protocol';
import { COMMON_OPTIONS, parseArgs, parseInteger, parsedOk, tryParse, usageError, usageProblem, type Parsed } from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import { EXIT } from '../exit-codes.ts';
import { buildPlaceRequest, PLACE_HELP, PLACE_OPTIONS, type PlaceFlags } from '../parse/place-request.ts';
import { requestAndPrint, withSession } from '../run-request.ts';
import type { Command } from './command.ts';

const USAGE = `Usage: allot place-batch --tenant <t> --count <n> --memory <MiB> --vcpus <n> [--batch-id <id>] [--max-per-node <k>] [options]

Places n VMs of one shape all or nothing (a tenant's cluster, a gang): every one of them is placed, or none is. The
members' request ids are <batch-id>-0 .. <batch-id>-<n-1>; the same --batch-id again answers the same placements.
Exit 0 all placed; 1 refused (the member that did not fit, and why: nothing was placed); 3 no coordinator answered
(retry with the same --batch-id: it is safe).

  --count <n>             how many VMs (1..${MAX_BATCH_MEMBERS})
  --batch-id <id>         the batch's idempotency key (default: a new UUID)
  --max-per-node <k>      at most k of these VMs on one node (anti-affinity among them); with --group, of that group

${PLACE_HELP.split('\n')
  .filter((line) => !line.startsWith('  --request-id') && !line.startsWith('  --preempt') && !line.startsWith('  --group'))
  .join('\n')}
  --group <name>          an anti-affinity group the VMs join; --max-per-node <k> of it on one node (default 1)

${CONNECTION_HELP}`;

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...CONNECTION_OPTIONS,
  ...PLACE_OPTIONS,
  count: { type: 'string' },
  'batch-id': { type: 'string' },
} as const;

/** The flags as a place.batch request: one place request's shape, n members of it. `newId` makes the default id testable. */
export function buildPlaceBatchRequest(
  f: PlaceFlags & { count?: string | undefined; 'batch-id'?: string | undefined },
  newId: () => string = randomUUID,
): Parsed<PlaceBatchRequest> {
  if (f['request-id'] !== undefined) return usageProblem('--request-id: a batch names its members by --batch-id');
  if (f.preempt === true) return usageProblem('--preempt: a batch does not preempt');
  if (f.count === undefined) return usageProblem('--count is required');
  const count = parseInteger('count', f.count, 1, MAX_BATCH_MEMBERS);
  if (!count.ok) return count;
  const batchId = f['batch-id'] ?? newId();
  if (!RequestIdSchema.safeParse(`${batchId}-${count.value - 1}`).success)
    return usageProblem(`--batch-id: "${batchId}" is not a request id (letters, digits, "_", ":", "=" and "-", at most 120)`);
  // --max-per-node without --group spreads the batch itself (its own group, named by the coordinator).
  let maxPerNode: number | undefined;
  if (f.group === undefined && f['max-per-node'] !== undefined) {
    const max = parseInteger('max-per-node', f['max-per-node'], 1, MAX_BATCH_MEMBERS);
    if (!max.ok) return max;
    maxPerNode = max.value;
  }
  const shape = buildPlaceRequest({
    ...f,
    'max-per-node': f.group === undefined ? undefined : f['max-per-node'],
    'request-id': `${batchId}-0`,
  });
  if (!shape.ok) return shape;
  const { request, placement } = shape.value;
  const raw = {
    batchId,
    tenantId: request.tenantId,
    members: Array.from({ length: count.value }, (_, i) => ({ ...request, requestId: `${batchId}-${i}` })),
    placement,
    ...(maxPerNode === undefined ? {} : { maxPerNode }),
  };
  const parsed = PlaceBatchRequestSchema.safeParse(raw);
  if (!parsed.success) return usageProblem(formatIssues(parsed.error).join('; '));
  return parsedOk(parsed.data);
}

/** `allot place-batch`: one line per member, in order. */
function renderPlaceBatch(r: PlaceBatchReply): string {
  const nodes = new Set(r.placements.map((p) => p.nodeId)).size;
  const lines = [`batch ${r.batchId}: ${r.placements.length} placed on ${nodes} node${nodes === 1 ? '' : 's'}`];
  for (const p of r.placements) {
    const cpuset = p.cpuset.length === 0 ? '' : ` cpuset ${p.cpuset.join(',')}`;
    lines.push(`${p.allocation.requestId} on ${p.nodeId}: ${p.allocation.id} ${p.allocation.status}${cpuset}`);
  }
  return lines.join('\n');
}

export const placeBatchCommand: Command = {
  name: 'place-batch',
  summary: 'place n VMs all or nothing (a cluster, a gang), spread with --max-per-node',
  help: USAGE,
  async run(args, ctx) {
    const parsed = tryParse(() => parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }));
    if (!parsed.ok) return usageError(ctx, 'place-batch', parsed.message);
    const v = parsed.value.values;
    if (v.help) {
      ctx.out(USAGE);
      return EXIT.ok;
    }
    const request = buildPlaceBatchRequest(v);
    if (!request.ok) return usageError(ctx, 'place-batch', request.message);
    return withSession(ctx, 'place-batch', v, (session) =>
      requestAndPrint(ctx, 'place-batch', session, 'place.batch', request.value, v.json === true, renderPlaceBatch),
    );
  },
};
