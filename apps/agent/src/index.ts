/** @allot/agent: the host agent, as a process (main.ts) and as parts the local cluster and benchmarks reuse. */
export { Agent, AGENT_VERSION } from './agent.ts';
export { agentEndpoints, type EndpointContext } from './endpoints.ts';
export { buildUsageSnapshot, type SnapshotContext } from './usage-snapshot.ts';
export { EventPublisher, eventOfRecord, eventsOfRecord, refusalEvent } from './events.ts';
export { LedgerJournal } from './ledger-journal.ts';
export { createLogger } from './logger.ts';
export * from './config/index.ts';
