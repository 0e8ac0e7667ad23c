import { loggerOptions } from '@allot/telemetry';
import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * The coordinator's structured logs (@allot/telemetry loggerOptions, shared with the agent): JSON lines unless a person
 * watches a terminal (ALLOT_LOG_FORMAT=json|pretty decides), credentials redacted. The coordinator id rides on every
 * line as a binding, never concatenated into messages.
 */
export function createLogger(level: string, coordinatorId: string, destination?: DestinationStream): Logger {
  const options = loggerOptions({
    level,
    base: { coordinator: coordinatorId, pid: process.pid },
    ...(destination === undefined ? {} : { format: 'json' as const }),
  });
  return destination === undefined ? pino(options) : pino(options, destination);
}
