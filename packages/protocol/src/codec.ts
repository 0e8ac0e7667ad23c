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
    return {
      ok: false,
      error: errorOf('invalid_request', `payload is ${bytes.byteLength} bytes, more than the ${maxBytes} allowed`, {
        bytes: bytes.byteLength,
        maxBytes,
      }),
    };
  }
  let raw: unknown;
  try {
    raw = bytes.byteLength === 0 ? {} : packr.unpack(bytes);
  } catch (e) {
    return { ok: false, error: errorOf('invalid_request', `payload is not valid msgpack: ${(e as Error).message}`) };
  }
  const impure = impurePath(raw, '', 0);
  if (impure !== undefined)
    return { ok: false, error: errorOf('invalid_request', `${impure.path || '(root)'}: ${impure.why}`, { field: impure.path }) };
  return parse(raw);
}

/**
 * A request that says `Content-Type: application/json` is read as JSON text and answered in JSON, so that
 * `nats req allot.read.nodes '{}' -H Content-Type:application/json` works from a shell; the same size, depth and
 * plain-data rules apply (JSON holds nothing else anyway).
 */
export const CONTENT_TYPE_HEADER = 'Content-Type';
export const JSON_CONTENT_TYPE = 'application/json';

export function decodeJsonWith<T>(parse: (raw: unknown) => Result<T>, bytes: Uint8Array, maxBytes = MAX_REQUEST_BYTES): Result<T> {
  if (bytes.byteLength > maxBytes) {
    return {
      ok: false,
      error: errorOf('invalid_request', `payload is ${bytes.byteLength} bytes, more than the ${maxBytes} allowed`, {
        bytes: bytes.byteLength,
        maxBytes,
      }),
    };
  }
  let raw: unknown;
  try {
    raw = bytes.byteLength === 0 ? {} : JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    return { ok: false, error: errorOf('invalid_request', `payload is not valid JSON: ${(e as Error).message}`) };
  }
  const impure = impurePath(raw, '', 0);
  if (impure !== undefined)
    return { ok: false, error: errorOf('invalid_request', `${impure.path || '(root)'}: ${impure.why}`, { field: impure.path }) };
  return parse(raw);
}

export function encodeJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

/**
 * The version of this wire protocol, sent on every request and reply as `Allot-Protocol`. Peers one version apart
 * work together (a rolling upgrade has both for a while); further apart is refused with a typed error naming both,
 * never a decode failure. A message without the header (a shell, a client before the header) is taken as current.
 */
export const PROTOCOL_VERSION = 1;
export const PROTOCOL_HEADER = 'Allot-Protocol';

/** Why a peer's protocol version cannot be served, or undefined when it can. */
export function protocolVersionProblem(theirs: string | undefined, ours = PROTOCOL_VERSION): string | undefined {
  if (theirs === undefined || theirs === '') return undefined;
  const version = Number(theirs);
  if (!Number.isSafeInteger(version) || version < 1)
    return `${PROTOCOL_HEADER} ${JSON.stringify(theirs.slice(0, 32))} is not a protocol version`;
  if (Math.abs(version - ours) > 1)
    return `protocol version ${version} is too far from this process's ${ours} (one version apart at most): upgrade the older side`;
  return undefined;
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
      if (proto !== Object.prototype && proto !== null)
        return { path, why: `a ${(value as object).constructor?.name ?? 'non-plain'} value is not plain data` };
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
