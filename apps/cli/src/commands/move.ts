import { randomUUID } from 'node:crypto';
import { AllocationIdSchema, MAX_RESERVATION_TTL_MS, NodeIdSchema, RequestIdSchema, TenantIdSchema } from '@allot/core';
import type { Move } from '@allot/protocol';
import { COMMON_OPTIONS, parseArgs, parseInteger, positionalsExactly, tryParse, usageError } from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import { EXIT } from '../exit-codes.ts';
import type { CliContext } from '../context.ts';
import { renderEvacuation, renderMoveTable } from '../render/allocations.ts';
import { reportError } from '../report.ts';
import { requestAndPrint, withSession } from '../run-request.ts';
import type { Session } from '../session.ts';
import type { Command } from './command.ts';

const MOVE_USAGE = `Usage: allot move <allocationId> --tenant <t> [--to <node>] [--hold-ms <ms>] [--request-id <id>]
       allot move confirm <allocationId> --tenant <t> --request-id <moveId>
       allot move abort <allocationId> --tenant <t> --request-id <moveId>
       allot move list [--node <node>] [--tenant <t>]

Moves a VM to another node in two phases. 'allot move' holds room for it on the destination (--to, or the node
placement picks with the constraints and anti-affinity it was placed with, never its own node) as a reservation,
while it still runs where it is; the tenant's quota counts it once. Then, once the hypervisor has moved it:
'allot move confirm' activates the destination and releases the source; or 'allot move abort' releases the
destination and leaves it where it was. An unconfirmed hold expires after --hold-ms (default: the coordinator's).
'allot move list' shows the moves holding a destination now (an operator's request: a scan of the placements).
Exit 0 done; 1 refused (nothing fits, with why); 3 no coordinator answered (retry with the same --request-id: safe).

  --tenant <t>          the tenant that owns the VM (the request goes to allot.sched.<t>.move)
  --to <node>           the destination node (default: placement picks one)
  --node <node>         list: only moves from or to this node
  --hold-ms <ms>        how long the destination is held unconfirmed
  --request-id <id>     the move's id (default: a new UUID; confirm and abort name it)

${CONNECTION_HELP}`;

const EVACUATE_USAGE = `Usage: allot evacuate <node> [--hold-ms <ms>] [--request-id <id>]

Finds a destination for every VM on the node, from the placements the coordinators recorded (so also for a node
that is lost), with each VM's tenant, size, constraints and anti-affinity, and holds it there as a reservation. Prints
the plan: one move per VM, for its tenant's scheduler to confirm ('allot move confirm <allocationId> --tenant <t>
--request-id <moveId>') once the VM runs on its destination; what cannot be placed is listed with why. The same
--request-id resumes the evacuation and prints the same plan (confirmed moves as such). 'allot drain <node>
--evacuate' cordons first. Exit 0 every VM has a destination; 1 some could not be placed; 3 no coordinator answered.

  --hold-ms <ms>        how long each destination is held unconfirmed (default: the coordinator's)
  --request-id <id>     the evacuation's id (default: a new UUID)

${CONNECTION_HELP}`;

/** One move on one line: the source, the destination and the state. */
export function renderMove(m: Move): string {
  const dest =
    m.destination.allocation === undefined
      ? m.destination.nodeId
      : `${m.destination.nodeId} (${m.destination.allocation.id} ${m.destination.allocation.status})`;
  const released = m.sourceReleased === false ? ', source node did not answer: the sweep releases it' : '';
  return `${m.state.padEnd(9)} ${m.source.allocationId} on ${m.source.nodeId} -> ${dest}  tenant ${m.tenantId}  move ${m.moveRequestId}${released}`;
}

export const moveCommand: Command = {
  name: 'move',
  summary: 'move a VM to another node: hold, then confirm or abort',
  help: MOVE_USAGE,
  async run(args, ctx) {
    const options = {
      ...COMMON_OPTIONS,
      ...CONNECTION_OPTIONS,
      tenant: { type: 'string' },
      node: { type: 'string' },
      to: { type: 'string' },
      'hold-ms': { type: 'string' },
      'request-id': { type: 'string' },
    } as const;
    const parsed = tryParse(() => parseArgs({ args, options, strict: true, allowPositionals: true }));
    if (!parsed.ok) return usageError(ctx, 'move', parsed.message);
    const v = parsed.value.values;
    if (v.help) {
      ctx.out(MOVE_USAGE);
      return EXIT.ok;
    }
    if (parsed.value.positionals[0] === 'list') {
      if (parsed.value.positionals.length > 1)
        return usageError(ctx, 'move', `list takes no argument: "${parsed.value.positionals[1] ?? ''}"`);
      if (v.node !== undefined && !NodeIdSchema.safeParse(v.node).success)
        return usageError(ctx, 'move', `--node: "${v.node}" is not a node id`);
      if (v.tenant !== undefined && !TenantIdSchema.safeParse(v.tenant).success)
        return usageError(ctx, 'move', `--tenant: "${v.tenant}" is not a tenant id`);
      const request = { ...(v.node === undefined ? {} : { nodeId: v.node }), ...(v.tenant === undefined ? {} : { tenantId: v.tenant }) };
      return withSession(ctx, 'move', v, (session) =>
        requestAndPrint(ctx, 'move', session, 'moves', request, v.json === true, (r) =>
          r.count === 0
            ? 'no move in flight'
            : [`${r.count} move${r.count === 1 ? '' : 's'} in flight`, renderMoveTable(r.moves, r.count)].join('\n'),
        ),
      );
    }
    const phase =
      parsed.value.positionals[0] === 'confirm' || parsed.value.positionals[0] === 'abort' ? parsed.value.positionals[0] : undefined;
    const positionals = positionalsExactly(phase === undefined ? parsed.value.positionals : parsed.value.positionals.slice(1), [
      'allocationId',
    ]);
    if (!positionals.ok) return usageError(ctx, 'move', positionals.message);
    const allocationId = positionals.value[0] ?? '';
    if (!AllocationIdSchema.safeParse(allocationId).success)
      return usageError(ctx, 'move', `"${allocationId}" is not an allocation id (<nodeId>:<counter>)`);
    if (v.tenant === undefined) return usageError(ctx, 'move', '--tenant: name the tenant that owns the VM');
    if (!TenantIdSchema.safeParse(v.tenant).success) return usageError(ctx, 'move', `--tenant: "${v.tenant}" is not a tenant id`);
    if (phase !== undefined && v['request-id'] === undefined) return usageError(ctx, 'move', `--request-id: name the move to ${phase}`);
    const requestId = v['request-id'] ?? randomUUID();
    if (!RequestIdSchema.safeParse(requestId).success) return usageError(ctx, 'move', `--request-id: "${requestId}" is not a request id`);
    const json = v.json === true;
    if (phase !== undefined) {
      const request = { requestId, allocationId, tenantId: v.tenant };
      return withSession(ctx, 'move', v, (session) =>
        requestAndPrint(ctx, 'move', session, phase === 'confirm' ? 'move.confirm' : 'move.abort', request, json, renderMove),
      );
    }
    if (v.to !== undefined && !NodeIdSchema.safeParse(v.to).success) return usageError(ctx, 'move', `--to: "${v.to}" is not a node id`);
    const holdMs = v['hold-ms'] === undefined ? undefined : parseInteger('hold-ms', v['hold-ms'], 1, MAX_RESERVATION_TTL_MS);
    if (holdMs !== undefined && !holdMs.ok) return usageError(ctx, 'move', holdMs.message);
    const request = {
      requestId,
      allocationId,
      tenantId: v.tenant,
      ...(v.to === undefined ? {} : { to: v.to }),
      ...(holdMs === undefined ? {} : { holdMs: holdMs.value }),
    };
    return withSession(ctx, 'move', v, (session) =>
      requestAndPrint(
        ctx,
        'move',
        session,
        'move',
        request,
        json,
        (m) => `${renderMove(m)}\n\nConfirm: allot move confirm ${allocationId} --tenant ${v.tenant} --request-id ${requestId}`,
      ),
    );
  },
};

export const evacuateCommand: Command = {
  name: 'evacuate',
  summary: 'hold a destination for every VM of a node (a plan of moves to confirm)',
  help: EVACUATE_USAGE,
  async run(args, ctx) {
    const options = { ...COMMON_OPTIONS, ...CONNECTION_OPTIONS, 'hold-ms': { type: 'string' }, 'request-id': { type: 'string' } } as const;
    const parsed = tryParse(() => parseArgs({ args, options, strict: true, allowPositionals: true }));
    if (!parsed.ok) return usageError(ctx, 'evacuate', parsed.message);
    const v = parsed.value.values;
    if (v.help) {
      ctx.out(EVACUATE_USAGE);
      return EXIT.ok;
    }
    const positionals = positionalsExactly(parsed.value.positionals, ['node']);
    if (!positionals.ok) return usageError(ctx, 'evacuate', positionals.message);
    const nodeId = positionals.value[0] ?? '';
    if (!NodeIdSchema.safeParse(nodeId).success) return usageError(ctx, 'evacuate', `"${nodeId}" is not a node id`);
    const holdMs = v['hold-ms'] === undefined ? undefined : parseInteger('hold-ms', v['hold-ms'], 1, MAX_RESERVATION_TTL_MS);
    if (holdMs !== undefined && !holdMs.ok) return usageError(ctx, 'evacuate', holdMs.message);
    const requestId = v['request-id'] ?? randomUUID();
    if (!RequestIdSchema.safeParse(requestId).success)
      return usageError(ctx, 'evacuate', `--request-id: "${requestId}" is not a request id`);
    const request = { requestId, nodeId, ...(holdMs === undefined ? {} : { holdMs: holdMs.value }) };
    return withSession(ctx, 'evacuate', v, (session) => evacuateAndPrint(ctx, session, request, v.json === true));
  },
};

/** Sends the evacuate and prints the plan; exit 1 when some VM got no destination. */
export async function evacuateAndPrint(
  ctx: CliContext,
  session: Session,
  request: { requestId: string; nodeId: string; holdMs?: number },
  json: boolean,
): Promise<number> {
  const reply = await session.call('evacuate', request);
  if (!reply.ok) return reportError(ctx, 'evacuate', reply.error, json);
  ctx.out(json ? JSON.stringify(reply.value, null, 2) : renderEvacuation(reply.value));
  return reply.value.unplacedCount > 0 ? EXIT.refused : EXIT.ok;
}
