import { randomUUID } from 'node:crypto';
import { AllocationIdSchema, MAX_MEMORY_MIB, MAX_VCPUS, RequestIdSchema, TenantIdSchema } from '@allot/core';
import { COMMON_OPTIONS, parseArgs, parseInteger, positionalsExactly, tryParse, usageError } from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import { EXIT } from '../exit-codes.ts';
import { renderAllocation } from '../render/placement.ts';
import { requestAndPrint, withSession } from '../run-request.ts';
import type { Command } from './command.ts';

const RESIZE_USAGE = `Usage: allot resize <allocationId> --tenant <t> --memory-mib <MiB> --vcpus <n> [--request-id <id>]

Grows or shrinks a VM's memory and vCPUs in place, on the node named by the allocation id (<nodeId>:<counter>): that
node's agent decides, all or nothing, durably; the tenant's quota follows. A growth past the tenant's quota is refused
before the node is asked; a growth the node has no room for is refused with the figures (requested, free), and the
VM keeps what it had (move it to a roomier node). Exclusive cores: a growth adds cores chosen by the node's CPU
policy, a shrink gives back the highest ones. Exit 0 resized; 1 refused; 3 no coordinator answered (retry with the
same --request-id: it is safe).

  --tenant <t>          the tenant that owns the VM (the request goes to allot.sched.<t>.resize)
  --memory-mib <MiB>    the new memory, in MiB (both amounts are the VM's new size, not a difference)
  --vcpus <n>           the new number of vCPUs
  --request-id <id>     this resize's idempotency key (default: a new UUID)

${CONNECTION_HELP}`;

export const resizeCommand: Command = {
  name: 'resize',
  summary: "grow or shrink a VM's memory and vCPUs in place, by its allocation id",
  help: RESIZE_USAGE,
  async run(args, ctx) {
    const options = {
      ...COMMON_OPTIONS,
      ...CONNECTION_OPTIONS,
      tenant: { type: 'string' },
      'memory-mib': { type: 'string' },
      vcpus: { type: 'string' },
      'request-id': { type: 'string' },
    } as const;
    const parsed = tryParse(() => parseArgs({ args, options, strict: true, allowPositionals: true }));
    if (!parsed.ok) return usageError(ctx, 'resize', parsed.message);
    const v = parsed.value.values;
    if (v.help) {
      ctx.out(RESIZE_USAGE);
      return EXIT.ok;
    }
    const positionals = positionalsExactly(parsed.value.positionals, ['allocationId']);
    if (!positionals.ok) return usageError(ctx, 'resize', positionals.message);
    const allocationId = positionals.value[0] ?? '';
    if (!AllocationIdSchema.safeParse(allocationId).success)
      return usageError(ctx, 'resize', `"${allocationId}" is not an allocation id (<nodeId>:<counter>)`);
    if (v.tenant === undefined) return usageError(ctx, 'resize', '--tenant: name the tenant that owns the VM');
    if (!TenantIdSchema.safeParse(v.tenant).success) return usageError(ctx, 'resize', `--tenant: "${v.tenant}" is not a tenant id`);
    if (v['memory-mib'] === undefined || v.vcpus === undefined)
      return usageError(ctx, 'resize', 'name the new size: --memory-mib <MiB> and --vcpus <n>');
    const memoryMiB = parseInteger('memory-mib', v['memory-mib'], 0, MAX_MEMORY_MIB);
    if (!memoryMiB.ok) return usageError(ctx, 'resize', memoryMiB.message);
    const vcpus = parseInteger('vcpus', v.vcpus, 0, MAX_VCPUS);
    if (!vcpus.ok) return usageError(ctx, 'resize', vcpus.message);
    const requestId = v['request-id'] ?? randomUUID();
    if (!RequestIdSchema.safeParse(requestId).success) return usageError(ctx, 'resize', `--request-id: "${requestId}" is not a request id`);
    const request = { requestId, allocationId, tenantId: v.tenant, resources: { memoryMiB: memoryMiB.value, vcpus: vcpus.value } };
    return withSession(ctx, 'resize', v, (session) =>
      requestAndPrint(ctx, 'resize', session, 'resize', request, v.json === true, (a) => `resized\n${renderAllocation(a)}`),
    );
  },
};
