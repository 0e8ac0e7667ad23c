/** @allot/ledger: a crash-safe append-only log with group commit, snapshots and compaction. Knows nothing of allocations. */
export { openLedger, openLedger as open, Ledger } from './ledger.ts';
export type { LedgerOptions, OpenedLedger, RecoveryStats, LedgerStats, CompactionResult } from './ledger.ts';
export { LedgerError, LedgerErrorCode, LEDGER_ERROR_CODES, ALLOT_CODE_OF, isLedgerError } from './errors.ts';
export type { LedgerLogger } from './recovery.ts';
export { nodeSegmentIo, type SegmentIo, type SegmentFile } from './segment-file.ts';
export { seedLedger } from './seed.ts';
export { checkLedgerFormat, LEDGER_FORMAT, FORMAT_FILE } from './format.ts';
