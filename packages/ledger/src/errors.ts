/**
 * What can go wrong with a ledger, as values a caller branches on (never on the message).
 * - closed: `close()` was called; nothing more is accepted.
 * - failed: a write or fsync failed; the ledger accepts nothing more and the process must reopen it from disk.
 * - corrupt: the files on disk contradict each other or a record that was acknowledged is damaged.
 * - locked: another live process (or another open ledger in this process) holds the directory.
 * - too_large: one record is larger than `maxRecordBytes`.
 * - overloaded: the queue of records waiting for the disk is at `maxQueueBytes`; the disk is not keeping up.
 * - not_empty: a restore (`seedLedger`) was pointed at a directory that already holds records or a snapshot.
 * - unsupported_format: the directory was written by a newer version in a format this one cannot read (a downgrade).
 */
export const LEDGER_ERROR_CODES = [
  'closed',
  'failed',
  'corrupt',
  'locked',
  'too_large',
  'overloaded',
  'not_empty',
  'unsupported_format',
] as const;
export type LedgerErrorCode = (typeof LEDGER_ERROR_CODES)[number];

/** The codes as named values: `LedgerErrorCode.failed`. */
export const LedgerErrorCode = {
  closed: 'closed',
  failed: 'failed',
  corrupt: 'corrupt',
  locked: 'locked',
  too_large: 'too_large',
  overloaded: 'overloaded',
  not_empty: 'not_empty',
  unsupported_format: 'unsupported_format',
} as const satisfies { [K in LedgerErrorCode]: K };

/**
 * The allot error code (packages/core errors.ts) a caller should answer with for each ledger error. The ledger does not
 * depend on @allot/core, so the mapping is spelled here as strings the agent passes to `err()`.
 */
export const ALLOT_CODE_OF: { readonly [K in LedgerErrorCode]: 'unavailable' | 'internal' | 'invalid_request' } = {
  closed: 'unavailable',
  failed: 'unavailable',
  corrupt: 'internal',
  locked: 'unavailable',
  too_large: 'invalid_request',
  overloaded: 'unavailable',
  not_empty: 'invalid_request',
  unsupported_format: 'internal',
};

/** A ledger failure carried by a rejected promise: a code, a sentence, and the figures. */
export class LedgerError extends Error {
  readonly code: LedgerErrorCode;
  readonly details: Readonly<Record<string, unknown>>;
  constructor(code: LedgerErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LedgerError';
    this.code = code;
    this.details = details;
  }
}

export function isLedgerError(value: unknown, code?: LedgerErrorCode): value is LedgerError {
  return value instanceof LedgerError && (code === undefined || value.code === code);
}
