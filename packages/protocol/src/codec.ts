import { errorOf, type Result, validate } from '@allot/core';
import { Packr } from 'msgpackr';
import type { z } from 'zod';
import { MAX_REQUEST_BYTES } from './wire.ts';

/**
 * The wire codec: msgpack via msgpackr, decoded values validated against a zod schema.
 * Plain maps (no msgpackr records extension) so any msgpack client can speak to allot.
 */
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decodes and validates; any failure is an invalid_request error naming the field and the reason. */
export function decode<S extends z.ZodType>(schema: S, bytes: Uint8Array, maxBytes = MAX_REQUEST_BYTES): Result<z.output<S>> {
  return decodeWith((raw) => validate(schema, raw), bytes, maxBytes);
}

/**
 * Decodes with another validator: a hot endpoint may use a hand-written parser proven equal to its zod schema (the
 * managers' request parser, checked by a property test), so that a request is not validated twice.
 */
export function decodeWith<T>(parse: (raw: unknown) => Result<T>, bytes: Uint8Array, maxBytes = MAX_REQUEST_BYTES): Result<T> {
  if (bytes.byteLength > maxBytes) {
    return { ok: false, error: errorOf('invalid_request', `payload is ${bytes.byteLength} bytes, more than the ${maxBytes} allowed`, { bytes: bytes.byteLength, maxBytes }) };
  }
  let raw: unknown;
  try {
    raw = bytes.byteLength === 0 ? {} : packr.unpack(bytes);
  } catch (e) {
    return { ok: false, error: errorOf('invalid_request', `payload is not valid msgpack: ${(e as Error).message}`) };
  }
  const impure = impurePath(raw, '', 0);
  if (impure !== undefined) return { ok: false, error: errorOf('invalid_request', `${impure.path || '(root)'}: ${impure.why}`, { field: impure.path }) };
  return parse(raw);
}

/** How deep a payload may nest: every allot message is a few levels; deeper is an attack on the decoder's stack. */
const MAX_DEPTH = 64;

/**
 * Where a decoded value stops being plain data, if anywhere. msgpackr decodes its extension types (BigInt, Set, Map,
 * RegExp, Error, Date, typed arrays, structured-clone references) whatever the Packr options say, and a schema that
 * accepts `unknown` (error details) would let them reach code that assumes JSON values: a BigInt in an event's
 * details once crashed a coordinator in JSON.stringify. So every decoded payload is checked to hold only what JSON
 * holds: null, booleans, finite numbers, strings, arrays and plain objects (undefined passes: it means absent).
 * Written by hand because msgpackr has no option to refuse its built-in extensions.
 */
function impurePath(value: unknown, path: string, depth: number): { path: string; why: string } | undefined {
  if (depth > MAX_DEPTH) return { path, why: `nested deeper than ${MAX_DEPTH} levels` };
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : { path, why: `${value} is not a finite number` };
    case 'object': {
      if (value === null) return undefined;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const found = impurePath(value[i], path === '' ? String(i) : `${path}.${i}`, depth + 1);
          if (found !== undefined) return found;
        }
        return undefined;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) return { path, why: `a ${(value as object).constructor?.name ?? 'non-plain'} value is not plain data` };
      for (const key in value) {
        const found = impurePath((value as Record<string, unknown>)[key], path === '' ? key : `${path}.${key}`, depth + 1);
        if (found !== undefined) return found;
      }
      return undefined;
    }
    default:
      return { path, why: `a ${typeof value} is not plain data` };
  }
}
