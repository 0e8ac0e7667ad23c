import { Packr } from 'msgpackr';
import type { z } from 'zod';
import { errorOf, type AllotError, type Result } from './errors.ts';
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
  return parse(raw);
}

/** Validates an already-decoded value (a config file, a CLI argument) the same way. */
export function validate<S extends z.ZodType>(schema: S, raw: unknown): Result<z.output<S>> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, error: zodToAllotError(parsed.error) };
}

/** `resources.memoryMiB: Too small: expected number to be >=0`, one line per issue, the first one leading. */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.length ? issue.path.map(String).join('.') : '(root)'}: ${issue.message}`);
}

export function zodToAllotError(error: z.ZodError): AllotError {
  const lines = formatIssues(error);
  return errorOf('invalid_request', lines.join('; '), {
    issues: error.issues.slice(0, 20).map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
  });
}
