import { randomUUID } from 'node:crypto';
import { effectiveCapacity, NodeIdSchema, OvercommitRatioSchema, RequestIdSchema, type Limits, type LimitsPatch } from '@allot/core';
import type { HostLimits } from '@allot/protocol';
import {
  COMMON_OPTIONS,
  parseArgs,
  parseInteger,
  parsedOk,
  positionalsExactly,
  tryParse,
  usageError,
  usageProblem,
  type Parsed,
} from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import type { CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';
import { renderTable } from '../format/table.ts';
import { parseMemoryMiB } from '../parse/memory.ts';
import { requestAndPrint, withSession } from '../run-request.ts';
import type { Command } from './command.ts';

const HELP = `Usage: allot limits get <node>
       allot limits set <node> [--system-reserve-mib n] [--system-reserve-cores n] [--overcommit memory=1.5]
                               [--overcommit cpu=4] [--capacity-mib n] [--capacity-cores n]
                               [--soft-limit-mib n|none] [--hard-limit-mib n|none]
                               [--soft-limit-vcpus n|none] [--hard-limit-vcpus n|none] [--force]

  get                     the node's memory and CPU limits, as its agent holds them
  set                     changes only the limits named (the agent journals the change; placement sees it with
                          the node's next usage report). Memory in MiB (or 4G, 4GiB), CPU capacity and reserve in
                          cores, CPU soft and hard limits in vCPUs committed
  --overcommit type=r     units committed per physical unit, 1 to 64, at most two decimals; repeatable
  none                    as a soft or hard limit: removes it
  --force                 apply a change that leaves less effective capacity than is committed (refused otherwise)
  --request-id            idempotency key of set (default: a new UUID)

${CONNECTION_HELP}`;

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...CONNECTION_OPTIONS,
  'capacity-mib': { type: 'string' },
  'system-reserve-mib': { type: 'string' },
  'soft-limit-mib': { type: 'string' },
  'hard-limit-mib': { type: 'string' },
  'capacity-cores': { type: 'string' },
  'system-reserve-cores': { type: 'string' },
  'soft-limit-vcpus': { type: 'string' },
  'hard-limit-vcpus': { type: 'string' },
  overcommit: { type: 'string', multiple: true },
  force: { type: 'boolean' },
  'request-id': { type: 'string' },
} as const;

const SET_ONLY = [
  'capacity-mib',
  'system-reserve-mib',
  'soft-limit-mib',
  'hard-limit-mib',
  'capacity-cores',
  'system-reserve-cores',
  'soft-limit-vcpus',
  'hard-limit-vcpus',
  'overcommit',
  'force',
  'request-id',
] as const;

type Field = 'capacity' | 'systemReserve' | 'softLimit' | 'hardLimit';
type FigureFlag =
  | 'capacity-mib'
  | 'system-reserve-mib'
  | 'soft-limit-mib'
  | 'hard-limit-mib'
  | 'capacity-cores'
  | 'system-reserve-cores'
  | 'soft-limit-vcpus'
  | 'hard-limit-vcpus';
/** Each figure flag: the resource type and field it patches, and whether `none` (remove the limit) is allowed. */
const FIGURES: readonly { flag: FigureFlag; type: 'memory' | 'cpu'; field: Field }[] = [
  { flag: 'capacity-mib', type: 'memory', field: 'capacity' },
  { flag: 'system-reserve-mib', type: 'memory', field: 'systemReserve' },
  { flag: 'soft-limit-mib', type: 'memory', field: 'softLimit' },
  { flag: 'hard-limit-mib', type: 'memory', field: 'hardLimit' },
  { flag: 'capacity-cores', type: 'cpu', field: 'capacity' },
  { flag: 'system-reserve-cores', type: 'cpu', field: 'systemReserve' },
  { flag: 'soft-limit-vcpus', type: 'cpu', field: 'softLimit' },
  { flag: 'hard-limit-vcpus', type: 'cpu', field: 'hardLimit' },
];

/** The patch the flags name, per resource type (see LimitsPatchSchema: null removes a soft or hard limit). */
function patchOf(
  v: { readonly [flag in FigureFlag]?: string | undefined } & { readonly overcommit?: readonly string[] | undefined },
): Parsed<{ memory?: LimitsPatch; cpu?: LimitsPatch }> {
  const patch: { memory?: Record<string, number | null>; cpu?: Record<string, number | null> } = {};
  for (const { flag, type, field } of FIGURES) {
    const text = v[flag];
    if (text === undefined) continue;
    let figure: number | null;
    if (text.trim() === 'none') {
      if (field !== 'softLimit' && field !== 'hardLimit') return usageProblem(`--${flag}: "none" removes a soft or hard limit only`);
      figure = null;
    } else {
      const n = type === 'memory' ? parseMemoryMiB(flag, text) : parseInteger(flag, text, 0, Number.MAX_SAFE_INTEGER);
      if (!n.ok) return n;
      figure = n.value;
    }
    (patch[type] ??= {})[field] = figure;
  }
  for (const text of v.overcommit ?? []) {
    for (const part of text.split(',')) {
      const [type, ratioText] = part.split('=', 2);
      if ((type !== 'memory' && type !== 'cpu') || ratioText === undefined)
        return usageProblem(`--overcommit: "${part}" is not memory=<ratio> or cpu=<ratio>`);
      const ratio = OvercommitRatioSchema.safeParse(Number(ratioText));
      if (ratioText.trim() === '' || !ratio.success)
        return usageProblem(`--overcommit: ${type} ratio "${ratioText}" is not a number from 1 to 64 with at most two decimals`);
      (patch[type] ??= {})['overcommitRatio'] = ratio.data;
    }
  }
  if (patch.memory === undefined && patch.cpu === undefined) return usageProblem('name at least one limit to change (see --help)');
  return parsedOk(patch as { memory?: LimitsPatch; cpu?: LimitsPatch });
}

function figure(n: number | undefined): string {
  return n === undefined ? '-' : String(n);
}

/** One row per resource type: the limits as held, and the effective capacity they give. */
export function renderLimits(nodeId: string, limits: HostLimits): string {
  const row = (type: string, unit: string, l: Limits) => [
    type,
    unit,
    figure(l.capacity),
    figure(l.systemReserve),
    String(l.overcommitRatio),
    String(effectiveCapacity(l)),
    figure(l.softLimit),
    figure(l.hardLimit),
  ];
  return [
    `node ${nodeId}`,
    renderTable(
      [
        { header: 'RESOURCE' },
        { header: 'UNIT' },
        { header: 'CAPACITY', align: 'right' },
        { header: 'RESERVE', align: 'right' },
        { header: 'OVERCOMMIT', align: 'right' },
        { header: 'EFFECTIVE', align: 'right' },
        { header: 'SOFT', align: 'right' },
        { header: 'HARD', align: 'right' },
      ],
      [row('memory', 'MiB', limits.memory), row('cpu', 'cores/vCPU', limits.cpu)],
    ),
  ].join('\n');
}

export const limitsCommand: Command = {
  name: 'limits',
  summary: "a node's limits: get, set (system reserve, overcommit, soft and hard limits)",
  help: HELP,
  async run(args, ctx: CliContext) {
    const parsed = tryParse(() => parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: true }));
    if (!parsed.ok) return usageError(ctx, 'limits', parsed.message);
    const v = parsed.value.values;
    if (v.help) {
      ctx.out(HELP);
      return EXIT.ok;
    }
    const [sub, ...positionals] = parsed.value.positionals;
    if (sub !== 'get' && sub !== 'set')
      return usageError(ctx, 'limits', sub === undefined ? 'missing a subcommand: get or set' : `unknown subcommand "${sub}": get or set`);
    const p = positionalsExactly(positionals, ['node']);
    if (!p.ok) return usageError(ctx, 'limits', p.message);
    const nodeId = p.value[0] ?? '';
    const node = NodeIdSchema.safeParse(nodeId);
    if (!node.success) return usageError(ctx, 'limits', `"${nodeId}": ${node.error.issues[0]?.message ?? 'not a node id'}`);
    const json = v.json === true;
    const render = (l: HostLimits) => renderLimits(nodeId, l);
    if (sub === 'get') {
      const misplaced = SET_ONLY.find((f) => v[f] !== undefined);
      if (misplaced !== undefined) return usageError(ctx, 'limits', `--${misplaced} goes with 'limits set'`);
      return withSession(ctx, 'limits', v, (s) => requestAndPrint(ctx, 'limits', s, 'limits.get', { nodeId }, json, render));
    }
    const patch = patchOf(v);
    if (!patch.ok) return usageError(ctx, 'limits', patch.message);
    const requestId = v['request-id'] ?? randomUUID();
    if (!RequestIdSchema.safeParse(requestId).success) return usageError(ctx, 'limits', `--request-id: "${requestId}" is not a request id`);
    const request = { requestId, nodeId, ...patch.value, force: v.force === true };
    return withSession(ctx, 'limits', v, (s) => requestAndPrint(ctx, 'limits', s, 'limits.update', request, json, render));
  },
};
