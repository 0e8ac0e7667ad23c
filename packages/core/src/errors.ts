import { z } from 'zod';

/**
 * Error codes shared by every component. A caller branches on the code, never on the message.
 * - invalid_request: the message failed validation; nothing changed.
 * - insufficient_capacity: the request does not fit the effective capacity (details carry the figures).
 * - quota_exceeded: a tenant limit would be crossed (details name the limit and the figures).
 * - rate_limited: a tenant's token bucket is empty (details.retryAfterMs).
 * - not_found: the named allocation, reservation, node or tenant does not exist.
 * - conflict: a request id was reused with a different request, or the state forbids the transition.
 * - unavailable: the component is stopped, cordoned, draining, or its dependency is down; retry elsewhere or later.
 * - timeout: no answer in time; the outcome is unknown, retry with the same request id.
 * - internal: a bug or an unexpected fault; the process reports it in health.
 */
export const ERROR_CODES = [
  'invalid_request',
  'insufficient_capacity',
  'quota_exceeded',
  'rate_limited',
  'not_found',
  'conflict',
  'unavailable',
  'timeout',
  'internal',
] as const;

export const ErrorCodeSchema = z.enum(ERROR_CODES);
export type ErrorCode = z.infer<typeof ErrorCodeSchema>;

/** The wire shape of an error: a code to branch on, a sentence for people, figures for both. */
export const AllotErrorSchema = z.object({
  code: ErrorCodeSchema,
  message: z.string().max(4096),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type AllotError = z.infer<typeof AllotErrorSchema>;

/** A value or a typed error: every fallible operation in allot returns one of these instead of throwing. */
export type Result<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: AllotError };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function err<T = never>(code: ErrorCode, message: string, details?: Record<string, unknown>): Result<T> {
  return { ok: false, error: details === undefined ? { code, message } : { code, message, details } };
}

export function errorOf(code: ErrorCode, message: string, details?: Record<string, unknown>): AllotError {
  return details === undefined ? { code, message } : { code, message, details };
}

/** Codes after which the same request may succeed elsewhere or later (a scheduler retries these). */
export function isRetryable(code: ErrorCode): boolean {
  return code === 'unavailable' || code === 'timeout' || code === 'rate_limited' || code === 'insufficient_capacity';
}

/**
 * An AllotError carried through `throw` where a throw is unavoidable (an actor's ask, a library callback).
 * Catch sites turn it back into a Result with `toAllotError`.
 */
export class AllotFailure extends Error {
  readonly error: AllotError;
  constructor(error: AllotError) {
    super(`${error.code}: ${error.message}`);
    this.name = 'AllotFailure';
    this.error = error;
  }
}

/** Any thrown value as an AllotError: AllotFailure keeps its code, anything else is `internal`. */
export function toAllotError(thrown: unknown): AllotError {
  if (thrown instanceof AllotFailure) return thrown.error;
  const message = thrown instanceof Error ? thrown.message : String(thrown);
  return { code: 'internal', message };
}

/** Unwraps a Result or throws its error as an AllotFailure; for tests and for code that cannot go on without the value. */
export function unwrap<T>(result: Result<T>): T {
  if (result.ok) return result.value;
  throw new AllotFailure(result.error);
}
