import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { formatIssues, RequestIdSchema, TenantIdSchema, TenantQuotaSchema, type Rate } from '@allot/core';
import { COMMON_OPTIONS, parseArgs, parseInteger, positionalsExactly, tryParse, usageError } from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import type { CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';
import { parseHugepagesQuota } from '../parse/hugepages.ts';
import { parseMemoryMiB } from '../parse/memory.ts';
import { parseRate } from '../parse/rate.ts';
import { renderImportReport, renderQuota, renderRecount } from '../render/quota.ts';
import { requestAndPrint, withSession } from '../run-request.ts';
import type { Command } from './command.ts';

const HELP = `Usage: allot quotas get <tenant>
       allot quotas set <tenant> [--max-vms n] [--max-vcpus n] [--max-memory MiB] [--max-vms-per-node n]
                                 [--max-hugepages 2Mi:MiB ...] [--priority n] [--place-rate 100/hour ...]
                                 [--release-rate 10/second ...]
       allot quotas import-legacy <file.json>
       allot quotas recount <tenant>

  get             the tenant's quota and its current cluster-wide use
  set             replaces the tenant's quota with exactly the limits given: a limit not named is no limit
                  (so 'allot quotas set t' with no flag lifts every limit). Rates: count/second|minute|hour,
                  repeatable (up to 3 each), kept in their unit (100/hour is not rounded to 0/second).
                  --max-hugepages 2Mi:1G (or 1Gi:8G): the MiB of that page size's hugepages the tenant's VMs may
                  hold, counted apart from --max-memory (kube's requests.hugepages-2Mi); one per page size
  import-legacy   sends the legacy quota documents of the file (a JSON array, or {"documents": [...]}) to the
                  migration and prints its report: per tenant migrated / updated / unchanged / skipped, warnings
  recount         rebuilds the tenant's usage counters from its placements that count (pending and placed
                  intents) and prints them before and after. Never needed in operation: after the bucket was
                  edited or restored by hand, or after moving from the old per-placement quota records
  --request-id    idempotency key of set, import-legacy and recount (default: a new UUID)

${CONNECTION_HELP}`;

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...CONNECTION_OPTIONS,
  'max-vms': { type: 'string' },
  'max-vcpus': { type: 'string' },
  'max-memory': { type: 'string' },
  'max-vms-per-node': { type: 'string' },
  'max-hugepages': { type: 'string', multiple: true },
  priority: { type: 'string' },
  'place-rate': { type: 'string', multiple: true },
  'release-rate': { type: 'string', multiple: true },
  'request-id': { type: 'string' },
} as const;

const SET_ONLY = [
  'max-vms',
  'max-vcpus',
  'max-memory',
  'max-vms-per-node',
  'max-hugepages',
  'priority',
  'place-rate',
  'release-rate',
] as const;

function rates(flag: string, texts: readonly string[] | undefined): { ok: true; value: Rate[] } | { ok: false; message: string } {
  const out: Rate[] = [];
  for (const text of texts ?? []) {
    const r = parseRate(flag, text);
    if (!r.ok) return r;
    out.push(r.value);
  }
  if (out.length > 3) return { ok: false, message: `--${flag}: at most 3 rates` };
  return { ok: true, value: out };
}

/** The legacy file: a JSON array of documents, or an object holding them under `documents` or `quotas`. */
function readLegacyDocuments(path: string): { ok: true; value: unknown[] } | { ok: false; message: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    return { ok: false, message: `${path}: ${(e as Error).message}` };
  }
  const docs = Array.isArray(raw)
    ? raw
    : raw !== null && typeof raw === 'object'
      ? ((raw as { documents?: unknown; quotas?: unknown }).documents ?? (raw as { quotas?: unknown }).quotas)
      : undefined;
  if (!Array.isArray(docs))
    return { ok: false, message: `${path}: expected a JSON array of quota documents, or an object with a "documents" array` };
  if (docs.length > 10_000)
    return { ok: false, message: `${path}: ${docs.length} documents, more than the 10000 one import takes; split the file` };
  return { ok: true, value: docs };
}

export const quotasCommand: Command = {
  name: 'quotas',
  summary: 'tenant quotas: get, set, import-legacy, recount',
  help: HELP,
  async run(args, ctx: CliContext) {
    const parsed = tryParse(() => parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: true }));
    if (!parsed.ok) return usageError(ctx, 'quotas', parsed.message);
    const v = parsed.value.values;
    if (v.help) {
      ctx.out(HELP);
      return EXIT.ok;
    }
    const [sub, ...positionals] = parsed.value.positionals;
    const json = v.json === true;
    const requestId = v['request-id'] ?? randomUUID();
    if (!RequestIdSchema.safeParse(requestId).success) return usageError(ctx, 'quotas', `--request-id: "${requestId}" is not a request id`);
    if (sub !== 'set') {
      const misplaced = SET_ONLY.find((f) => v[f] !== undefined);
      if (misplaced !== undefined) return usageError(ctx, 'quotas', `--${misplaced} goes with 'quotas set'`);
    }
    switch (sub) {
      case 'get':
      case 'recount': {
        const p = positionalsExactly(positionals, ['tenant']);
        if (!p.ok) return usageError(ctx, 'quotas', p.message);
        const tenantId = p.value[0] ?? '';
        if (!TenantIdSchema.safeParse(tenantId).success)
          return usageError(ctx, 'quotas', `"${tenantId}" is not a tenant id (letters, digits, "_" and "-")`);
        if (sub === 'recount')
          return withSession(ctx, 'quotas', v, (s) =>
            requestAndPrint(ctx, 'quotas', s, 'quota.recount', { requestId, tenantId }, json, renderRecount),
          );
        return withSession(ctx, 'quotas', v, (s) => requestAndPrint(ctx, 'quotas', s, 'quota.get', { tenantId }, json, renderQuota));
      }
      case 'set': {
        const p = positionalsExactly(positionals, ['tenant']);
        if (!p.ok) return usageError(ctx, 'quotas', p.message);
        const quota: Record<string, unknown> = { tenantId: p.value[0] };
        for (const [flag, key] of [
          ['max-vms', 'maxVms'],
          ['max-vcpus', 'maxVcpus'],
          ['max-vms-per-node', 'maxVmsPerNode'],
          ['priority', 'priority'],
        ] as const) {
          const text = v[flag];
          if (text === undefined) continue;
          const n = parseInteger(flag, text, 0, flag === 'priority' ? 1000 : Number.MAX_SAFE_INTEGER);
          if (!n.ok) return usageError(ctx, 'quotas', n.message);
          quota[key] = n.value;
        }
        if (v['max-memory'] !== undefined) {
          const m = parseMemoryMiB('max-memory', v['max-memory']);
          if (!m.ok) return usageError(ctx, 'quotas', m.message);
          quota['maxMemoryMiB'] = m.value;
        }
        const hugepages = parseHugepagesQuota(v['max-hugepages']);
        if (!hugepages.ok) return usageError(ctx, 'quotas', hugepages.message);
        if (hugepages.value !== undefined) quota['maxHugepagesMiB'] = hugepages.value;
        const place = rates('place-rate', v['place-rate']);
        if (!place.ok) return usageError(ctx, 'quotas', place.message);
        const release = rates('release-rate', v['release-rate']);
        if (!release.ok) return usageError(ctx, 'quotas', release.message);
        quota['placeRates'] = place.value;
        quota['releaseRates'] = release.value;
        const valid = TenantQuotaSchema.safeParse(quota);
        if (!valid.success) return usageError(ctx, 'quotas', formatIssues(valid.error).join('; '));
        return withSession(ctx, 'quotas', v, (s) =>
          requestAndPrint(ctx, 'quotas', s, 'quota.set', { requestId, quota: valid.data }, json, renderQuota),
        );
      }
      case 'import-legacy': {
        const p = positionalsExactly(positionals, ['file.json']);
        if (!p.ok) return usageError(ctx, 'quotas', p.message);
        const docs = readLegacyDocuments(resolve(ctx.cwd, p.value[0] ?? ''));
        if (!docs.ok) return usageError(ctx, 'quotas', docs.message);
        return withSession(ctx, 'quotas', v, (s) =>
          requestAndPrint(ctx, 'quotas', s, 'quota.import', { requestId, documents: docs.value }, json, renderImportReport),
        );
      }
      case undefined:
        return usageError(ctx, 'quotas', 'missing a subcommand: get, set, import-legacy or recount');
      default:
        return usageError(ctx, 'quotas', `unknown subcommand "${sub}": get, set, import-legacy or recount`);
    }
  },
};
