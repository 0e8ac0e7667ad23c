/** @allot/core: the contract every allot component shares. Nothing here does I/O. */
export * from './errors.ts';
export * from './domain.ts';
export * from './config.ts';
export * from './resource-manager.ts';
export * from './wire.ts';
export * from './subjects.ts';
export * from './codec.ts';
export * from './probe.ts';
export type { Logger } from './logger.ts';
export * from './efficiency.ts';
export * from './version.ts';
