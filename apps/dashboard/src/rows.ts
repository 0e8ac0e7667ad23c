import { NodeRowSchema, type NodeRow, type z } from '@allot/protocol/http';

/*
 * Node rows validated fast. zod checks a row in ~20 µs on its interpreted path (the coordinator's CSP allows no eval, so
 * zod cannot compile its schemas): 10,000 rows were 220 ms of a first paint's ~400 ms of script. Most rows are
 * plain: a check here that only ever accepts rows NodeRowSchema accepts (stricter where that is simpler), and any row
 * it does not accept goes to NodeRowSchema, whose verdict and message stand. So the page accepts exactly what the
 * schema accepts; rows.test.ts holds the two together.
 */

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;
const LIVENESS = new Set(['ready', 'suspect', 'lost']);
const STATE = new Set(['ready', 'suspect', 'lost', 'draining', 'decommissioned']);
const FIGURES = ['capacity', 'systemReserve', 'effectiveCapacity', 'committed', 'used', 'reserved'] as const;
const CORES = ['sharedCores', 'exclusiveCores', 'reservedCores', 'cores'] as const;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const count = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;

/** Every element, holes included (Array.prototype.every skips holes). */
function all(a: readonly unknown[], test: (v: unknown) => boolean): boolean {
  for (let i = 0; i < a.length; i++) if (!test(a[i])) return false;
  return true;
}

function plainFigures(v: unknown, extra: readonly string[]): boolean {
  if (!isObject(v)) return false;
  for (const k of FIGURES) if (!count(v[k])) return false;
  for (const k of extra) if (!count(v[k])) return false;
  return true;
}

function plainLabels(v: unknown): boolean {
  if (!isObject(v) || Object.getPrototypeOf(v) !== Object.prototype) return false;
  let n = 0;
  for (const k in v) {
    const value = v[k];
    if (k.length < 1 || k.length > 64 || typeof value !== 'string' || value.length > 256) return false;
    n += 1;
  }
  return n <= 32;
}

function plainHealth(v: unknown): boolean {
  if (!isObject(v)) return false;
  if (v['status'] === 'healthy' || v['status'] === 'stopped') return true;
  if (v['status'] !== 'degraded' && v['status'] !== 'unhealthy') return false;
  const reasons = v['reasons'];
  return Array.isArray(reasons) && reasons.length >= 1 && all(reasons, (r) => typeof r === 'string' && r.length <= 512);
}

/** True only for rows NodeRowSchema accepts as they are (no defaults to fill, no keys to strip that a page reads). */
function plainRow(r: unknown): r is NodeRow {
  if (!isObject(r)) return false;
  const o = r['overcommit'];
  return (
    typeof r['nodeId'] === 'string' &&
    TOKEN.test(r['nodeId']) &&
    LIVENESS.has(r['liveness'] as string) &&
    (r['state'] === undefined || STATE.has(r['state'] as string)) &&
    count(r['lastSeen']) &&
    typeof r['bootId'] === 'string' &&
    count(r['seq']) &&
    plainLabels(r['labels']) &&
    typeof r['cordoned'] === 'boolean' &&
    plainHealth(r['health']) &&
    plainFigures(r['memory'], []) &&
    plainFigures(r['cpu'], CORES) &&
    isObject(o) &&
    Number.isFinite(o['memory']) &&
    Number.isFinite(o['cpu']) &&
    Array.isArray(r['tenants']) &&
    all(r['tenants'], (t) => typeof t === 'string' && TOKEN.test(t)) &&
    count(r['allocationCount']) &&
    Number.isSafeInteger(r['heartbeatMs']) &&
    (r['heartbeatMs'] as number) >= 1 &&
    // Taints have defaults to fill: the schema's own path.
    r['taints'] === undefined
  );
}

export type RowsResult = { ok: true; rows: NodeRow[] } | { ok: false; index: number; error: z.ZodError };

/** Validates an array of rows: the fast check, else the schema (its output, or its error with the row's index). */
export function parseRows(raw: readonly unknown[]): RowsResult {
  const rows: NodeRow[] = new Array<NodeRow>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const r = raw[i];
    if (plainRow(r)) {
      rows[i] = r;
      continue;
    }
    const parsed = NodeRowSchema.safeParse(r);
    if (!parsed.success) return { ok: false, index: i, error: parsed.error };
    rows[i] = parsed.data;
  }
  return { ok: true, rows };
}
