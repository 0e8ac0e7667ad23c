import type { ErrorCode } from '@allot/core';

/**
 * The CLI's exit codes, so scripts can branch without parsing text:
 * 0 done; 1 the request reached allot and was refused (or failed there); 2 the command line was wrong and nothing
 * was sent; 3 allot could not be reached (no NATS, no coordinator answering, no reply in time).
 */
export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * The exit code for an error reply. unavailable and timeout mean nobody (or nobody in time) answered: the outcome is
 * unknown and a retry with the same request id is safe. Every other code is an answer from allot: a refusal.
 */
export function exitCodeFor(code: ErrorCode): ExitCode {
  return code === 'unavailable' || code === 'timeout' ? EXIT.unreachable : EXIT.refused;
}
