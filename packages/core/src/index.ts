/**
 * @allot/core: the domain every allot component shares: its types and schemas, error codes, the ResourceManager
 * contract. Nothing here does I/O; the wire (messages, subjects, codec) is @allot/protocol.
 */
export * from './errors.ts';
export * from './domain.ts';
export * from './config.ts';
export * from './resource-manager.ts';
export * from './host.ts';
export * from './priority-usage.ts';
export * from './cluster.ts';
export * from './packed-cores.ts';
export * from './validate.ts';
export * from './probe.ts';
export type { Logger } from './logger.ts';
export * from './efficiency.ts';
export * from './version.ts';
