import { Packr } from 'msgpackr';
import type { Rng } from './random.ts';

/*
 * What the fuzzer sends: valid messages mutated field by field, random values (every msgpackr extension type among
 * them), random bytes, oversized and deeply nested payloads. Request ids and tenants start with `fuzz-`, so nothing
 * valid that slips through can collide with real state.
 */

export const FUZZ_TENANT = 'fuzz-tenant';

/** msgpackr with every extension on: records, structured-clone references (cycles), BigInt, Set, Map, RegExp, Error... */
const extPackr = new Packr({
  useRecords: true,
  structuredClone: true,
  moreTypes: true,
  largeBigIntToFloat: false,
  useBigIntExtension: true,
} as ConstructorParameters<typeof Packr>[0]);
const plainPackr = new Packr({ useRecords: false, mapsAsObjects: true });

const request = (n: number) => ({ requestId: `fuzz-${n}`, tenantId: FUZZ_TENANT, resources: { memoryMiB: 1024, vcpus: 1 } });

/** One valid-looking body per verb (agents' and schedulers'); a verb not listed starts from an empty object. */
export function baseMessage(kind: 'agent' | 'sched', verb: string, n: number, nodeId: string): Record<string, unknown> {
  const r = request(n);
  const allocationId = `${nodeId}:${900_000 + n}`;
  const agent: Record<string, Record<string, unknown>> = {
    allocate: { ...r, fence: 1 },
    reserve: { ...r, reservation: { ttlMs: 60_000 } },
    release: { requestId: `fuzz-rel-${n}`, allocationId, reason: 'fuzz' },
    activate: { requestId: `fuzz-act-${n}`, allocationId },
    check: r,
    usage: {},
    allocations: { status: 'live', tenantId: FUZZ_TENANT, limit: 10 },
    fence: { requestId: `fuzz-${n}`, fence: 3 },
    health: {},
    'limits.get': {},
    'limits.update': { requestId: `fuzz-lim-${n}`, memory: { overcommitRatio: 1.5 } },
    cordon: { requestId: `fuzz-c-${n}`, reason: 'fuzz' },
    uncordon: { requestId: `fuzz-u-${n}` },
  };
  const sched: Record<string, Record<string, unknown>> = {
    place: { request: r, placement: { strategy: 'spread', domainLabel: `fuzz-label-${n % 50}` } },
    check: { request: r, placement: { domainLabel: `fuzz-label-${n % 50}`, strategy: 'spread-domain' } },
    'place.batch': { batchId: `fuzz-b-${n}`, tenantId: FUZZ_TENANT, members: [r], maxPerNode: 1 },
    release: { requestId: `fuzz-rel-${n}`, placementRequestId: `fuzz-${n}`, tenantId: FUZZ_TENANT },
    activate: { requestId: `fuzz-act-${n}`, allocationId, tenantId: FUZZ_TENANT },
    usage: {},
    efficiency: {},
    nodes: { liveness: 'ready', labels: { zone: 'z' } },
    node: { nodeId },
    'quota.get': { tenantId: FUZZ_TENANT },
    'quota.set': { requestId: `fuzz-q-${n}`, quota: { tenantId: FUZZ_TENANT, limits: { vms: 1 } } },
    'quota.import': { requestId: `fuzz-qi-${n}`, documents: [{ tenant: FUZZ_TENANT }] },
    'quota.recount': { requestId: `fuzz-qr-${n}`, tenantId: FUZZ_TENANT },
    cordon: { requestId: `fuzz-c-${n}`, nodeId, reason: 'fuzz' },
    uncordon: { requestId: `fuzz-u-${n}`, nodeId },
    drain: { requestId: `fuzz-d-${n}`, nodeId },
    audit: {},
  };
  return structuredClone((kind === 'agent' ? agent : sched)[verb] ?? {});
}

class Custom {
  x = 1;
}

/** A value of any kind msgpackr can carry, plain or not. */
export function randomValue(rng: Rng, depth = 0): unknown {
  const leaf = (): unknown => {
    switch (rng.int(22)) {
      case 0:
        return null;
      case 1:
        return rng.chance(0.5);
      case 2:
        return rng.int(2 ** 31) - 2 ** 30;
      case 3:
        return rng.pick([0, -1, 2 ** 53, -(2 ** 53), 2 ** 64, 1e308, -0, 0.5, 1.0000001, Number.MAX_SAFE_INTEGER + 2]);
      case 4:
        return rng.pick([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
      case 5:
        return 'x'.repeat(rng.int(300));
      case 6:
        return rng.pick([
          '',
          ' ',
          'a.b',
          '*',
          '>',
          'fuzz-\u0000\u001b[31m',
          '__proto__',
          'constructor',
          '\ud800',
          'ü'.repeat(50),
          'cluster',
          '../../etc',
        ]);
      case 7:
        return BigInt(rng.int(1_000_000)) * 10n ** BigInt(rng.int(30));
      case 8:
        return new Set([1, 'a', rng.int(10)]);
      case 9:
        return new Map<unknown, unknown>([
          ['k', 1],
          [2, 'v'],
        ]);
      case 10:
        return /fu(zz)+/gi;
      case 11:
        return new Error('fuzz error');
      case 12:
        return new Date(rng.int(2 ** 40));
      case 13:
        return new Uint8Array(rng.bytes(rng.int(64)));
      case 14:
        return new Float64Array([1.5, Number.NaN]);
      case 15:
        return new Int32Array([1, -2, 3]);
      case 16:
        return new BigInt64Array([1n, -2n]);
      case 17:
        return Buffer.from('buf');
      case 18:
        return undefined;
      case 19:
        return new Custom();
      case 20:
        return new Date(Number.NaN);
      default:
        return new Uint16Array(4).buffer;
    }
  };
  if (depth > 4 || rng.chance(0.6)) return leaf();
  if (rng.chance(0.5)) return Array.from({ length: rng.int(5) }, () => randomValue(rng, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = rng.int(5); i > 0; i--)
    o[rng.pick(['a', 'requestId', 'tenantId', 'nodeId', 'resources', 'fence', '__proto__', 'status', 'limit'])] = randomValue(
      rng,
      depth + 1,
    );
  return o;
}

/**
 * Only plain objects and arrays are walked into: a typed array, Map, Date... that an earlier mutation put in the body
 * is one value (deleting or assigning an "element" of a typed array throws, and stopped a 1,000,000-message run).
 */
function isPlainContainer(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return Array.isArray(value) || proto === Object.prototype || proto === null;
}

/** Paths of every field of a plain object tree (arrays by index). */
function paths(value: unknown, prefix: string[] = [], out: string[][] = []): string[][] {
  if (isPlainContainer(value)) {
    for (const [k, v] of Object.entries(value)) {
      const p = [...prefix, k];
      out.push(p);
      paths(v, p, out);
    }
  }
  return out;
}

/** Mutates one to three fields of `base` in place: removed, replaced by a random value, or a type/limit mistake. */
export function mutate(rng: Rng, base: Record<string, unknown>): Record<string, unknown> {
  const all = paths(base);
  for (let i = 1 + rng.int(3); i > 0; i--) {
    if (all.length === 0 || rng.chance(0.1)) {
      base[rng.pick(['extra', 'requestId', 'tenantId', 'nodeId', 'fence', 'limit', 'after', 'documents'])] = randomValue(rng);
      continue;
    }
    const path = rng.pick(all);
    let at = base as Record<string, unknown>;
    for (const k of path.slice(0, -1)) {
      const next = at[k];
      if (!isPlainContainer(next)) break;
      at = next;
    }
    const key = path[path.length - 1] as string;
    const old = at[key];
    switch (rng.int(6)) {
      case 0:
        delete at[key];
        break;
      case 1:
        at[key] = typeof old === 'number' ? rng.pick([-1, 0, old * 1_000_000, old + 0.5, 2 ** 53]) : randomValue(rng);
        break;
      case 2:
        at[key] =
          typeof old === 'string'
            ? rng.pick(['', `${old}.x`, `${old} x`, old.repeat(100), '*'])
            : typeof old === 'object'
              ? '[object]'
              : String(old);
        break;
      case 3:
        at[key] = [old];
        break;
      case 4:
        at[key] = { v: old };
        break;
      default:
        at[key] = randomValue(rng);
        break;
    }
  }
  return base;
}

/** Raw msgpack of an array nested `depth` levels (built by hand: an encoder would overflow its own stack). */
export function deeplyNested(depth: number): Uint8Array {
  const out = new Uint8Array(depth + 1);
  out.fill(0x91, 0, depth); // fixarray of one element
  out[depth] = 0xc0; // nil
  return out;
}

export type Shape = 'mutated' | 'random_value' | 'ext_body' | 'random_bytes' | 'oversized' | 'deep' | 'empty' | 'cyclic';

/** Encodes one fuzz message of a shape from a base body. */
export function payloadOf(rng: Rng, shape: Shape, base: Record<string, unknown>): Uint8Array {
  switch (shape) {
    case 'mutated':
      return encodeAny(mutate(rng, base));
    case 'random_value':
      return encodeAny(randomValue(rng));
    case 'ext_body': {
      // A valid body with one field holding an extension type (a BigInt in error details once crashed a coordinator).
      const keys = Object.keys(base);
      base[keys.length > 0 && rng.chance(0.7) ? rng.pick(keys) : 'details'] = rng.pick<unknown>([
        10n ** 20n,
        new Set([1]),
        new Map([[1, 2]]),
        /x/,
        new Error('e'),
        new Date(0),
        new Uint8Array(3),
        new Custom(),
      ]);
      return encodeAny(base);
    }
    case 'random_bytes':
      return rng.bytes(1 + rng.int(256));
    case 'oversized': {
      const big = { ...base, pad: 'p'.repeat(rng.pick([65 * 1024, 200 * 1024, 900 * 1024])) };
      return plainPackr.pack(big);
    }
    case 'deep':
      return deeplyNested(rng.pick([65, 1_000, 100_000, 500_000]));
    case 'empty':
      return new Uint8Array(0);
    case 'cyclic': {
      const o: Record<string, unknown> = { ...base };
      o['self'] = o;
      return extPackr.pack(o);
    }
  }
}

function encodeAny(value: unknown): Uint8Array {
  try {
    return extPackr.pack(value);
  } catch {
    return plainPackr.pack('unencodable');
  }
}
