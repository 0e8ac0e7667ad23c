import { randomUUID } from 'node:crypto';
import { AllocationIdSchema, RequestIdSchema, TenantIdSchema } from '@allot/core';
import { COMMON_OPTIONS, parseArgs, positionalsExactly, tryParse, usageError } from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import { EXIT } from '../exit-codes.ts';
import { buildPlaceRequest, PLACE_HELP, PLACE_OPTIONS } from '../parse/place-request.ts';
import { renderAllocation, renderCheck, renderPlacement } from '../render/placement.ts';
import { requestAndPrint, withSession } from '../run-request.ts';
import type { Command } from './command.ts';

const PLACE_USAGE = `Usage: allot place --tenant <t> --memory <MiB> --vcpus <n> [options]

Places a VM: a coordinator picks a node, that node's agent commits the memory and CPU durably, then it answers.
Exit 0 placed; 1 refused (the reason and the figures are printed); 3 no coordinator answered (retry with the same
--request-id: it is safe).

${PLACE_HELP}

${CONNECTION_HELP}`;

const CHECK_USAGE = `Usage: allot check --tenant <t> --memory <MiB> --vcpus <n> [options]

A dry run of place: would it fit, on which nodes, and why the others refuse. Commits nothing.
With --preempt, when it fits only by preemption: the node and the allocations a place would preempt now (evicts nothing).
Exit 0 whether or not it fits (read "fits"); 1 when the check itself was refused.

${PLACE_HELP}

${CONNECTION_HELP}`;

const RELEASE_USAGE = `Usage: allot release <placementRequestId> --tenant <t> [--request-id <id>]

Releases the allocation made by the place whose request id is given.

  --tenant <t>        the tenant that owns the placement (the request goes to allot.sched.<t>.release)
  --request-id <id>   this release's idempotency key (default: a new UUID)

${CONNECTION_HELP}`;

function placeLike(name: 'place' | 'check', help: string, summary: string): Command {
  return {
    name,
    summary,
    help,
    async run(args, ctx) {
      const parsed = tryParse(() =>
        parseArgs({ args, options: { ...COMMON_OPTIONS, ...CONNECTION_OPTIONS, ...PLACE_OPTIONS }, strict: true, allowPositionals: false }),
      );
      if (!parsed.ok) return usageError(ctx, name, parsed.message);
      const v = parsed.value.values;
      if (v.help) {
        ctx.out(help);
        return EXIT.ok;
      }
      const request = buildPlaceRequest(v);
      if (!request.ok) return usageError(ctx, name, request.message);
      const json = v.json === true;
      return withSession(ctx, name, v, (session) =>
        name === 'place'
          ? requestAndPrint(ctx, name, session, 'place', request.value, json, renderPlacement)
          : requestAndPrint(ctx, name, session, 'check', request.value, json, renderCheck),
      );
    },
  };
}

export const placeCommand = placeLike('place', PLACE_USAGE, 'place a VM: pick a node and commit memory and vCPUs there');
export const checkCommand = placeLike('check', CHECK_USAGE, 'would a VM fit, and where (commits nothing)');

export const releaseCommand: Command = {
  name: 'release',
  summary: 'release the allocation of a placement, by its request id',
  help: RELEASE_USAGE,
  async run(args, ctx) {
    const parsed = tryParse(() =>
      parseArgs({
        args,
        options: { ...COMMON_OPTIONS, ...CONNECTION_OPTIONS, tenant: { type: 'string' }, 'request-id': { type: 'string' } },
        strict: true,
        allowPositionals: true,
      }),
    );
    if (!parsed.ok) return usageError(ctx, 'release', parsed.message);
    const v = parsed.value.values;
    if (v.help) {
      ctx.out(RELEASE_USAGE);
      return EXIT.ok;
    }
    const positionals = positionalsExactly(parsed.value.positionals, ['placementRequestId']);
    if (!positionals.ok) return usageError(ctx, 'release', positionals.message);
    const placementRequestId = positionals.value[0] ?? '';
    if (!RequestIdSchema.safeParse(placementRequestId).success)
      return usageError(ctx, 'release', `"${placementRequestId}" is not a request id (letters, digits, "_", ":", "=" and "-")`);
    const requestId = v['request-id'] ?? randomUUID();
    if (!RequestIdSchema.safeParse(requestId).success)
      return usageError(ctx, 'release', `--request-id: "${requestId}" is not a request id`);
    if (v.tenant === undefined) return usageError(ctx, 'release', '--tenant: name the tenant that owns the placement');
    if (!TenantIdSchema.safeParse(v.tenant).success) return usageError(ctx, 'release', `--tenant: "${v.tenant}" is not a tenant id`);
    const request = { requestId, placementRequestId, tenantId: v.tenant };
    return withSession(ctx, 'release', v, (session) =>
      requestAndPrint(ctx, 'release', session, 'release', request, v.json === true, (a) => `released\n${renderAllocation(a)}`),
    );
  },
};

const ACTIVATE_USAGE = `Usage: allot activate <allocationId> --tenant <t> [--request-id <id>]

Activates a reservation (a place made with a reservation TTL) before it expires: the node named by the allocation id
(<nodeId>:<counter>) turns it active, durably. Exit 0 active (also when it already was); 1 refused (expired,
released, unknown, another tenant's).

  --tenant <t>        the tenant that owns the reservation (the request goes to allot.sched.<t>.activate)
  --request-id <id>   this activation's idempotency key (default: a new UUID)

${CONNECTION_HELP}`;

export const activateCommand: Command = {
  name: 'activate',
  summary: 'activate a reservation before it expires, by its allocation id',
  help: ACTIVATE_USAGE,
  async run(args, ctx) {
    const parsed = tryParse(() =>
      parseArgs({
        args,
        options: { ...COMMON_OPTIONS, ...CONNECTION_OPTIONS, tenant: { type: 'string' }, 'request-id': { type: 'string' } },
        strict: true,
        allowPositionals: true,
      }),
    );
    if (!parsed.ok) return usageError(ctx, 'activate', parsed.message);
    const v = parsed.value.values;
    if (v.help) {
      ctx.out(ACTIVATE_USAGE);
      return EXIT.ok;
    }
    const positionals = positionalsExactly(parsed.value.positionals, ['allocationId']);
    if (!positionals.ok) return usageError(ctx, 'activate', positionals.message);
    const allocationId = positionals.value[0] ?? '';
    if (!AllocationIdSchema.safeParse(allocationId).success)
      return usageError(ctx, 'activate', `"${allocationId}" is not an allocation id (<nodeId>:<counter>)`);
    const requestId = v['request-id'] ?? randomUUID();
    if (!RequestIdSchema.safeParse(requestId).success)
      return usageError(ctx, 'activate', `--request-id: "${requestId}" is not a request id`);
    if (v.tenant === undefined) return usageError(ctx, 'activate', '--tenant: name the tenant that owns the reservation');
    if (!TenantIdSchema.safeParse(v.tenant).success) return usageError(ctx, 'activate', `--tenant: "${v.tenant}" is not a tenant id`);
    const request = { requestId, allocationId, tenantId: v.tenant };
    return withSession(ctx, 'activate', v, (session) =>
      requestAndPrint(ctx, 'activate', session, 'activate', request, v.json === true, (a) => `activated\n${renderAllocation(a)}`),
    );
  },
};
