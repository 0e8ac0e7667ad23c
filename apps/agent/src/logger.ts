import { loggerOptions } from '@allot/telemetry';
import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * The agent's structured logs (@allot/telemetry loggerOptions, shared with the coordinator): JSON lines unless a person
 * watches a terminal (ALLOT_LOG_FORMAT=json|pretty decides), credentials redacted. Bindings (node, component) travel
 * in child loggers, never in message strings.
 */
export function createLogger(options: {
  level: string;
  name: string;
  nodeId: string;
  pretty?: boolean;
  destination?: DestinationStream;
}): Logger {
  const format = options.destination !== undefined ? 'json' : options.pretty === undefined ? undefined : options.pretty ? 'pretty' : 'json';
  const pinoOptions = loggerOptions({
    level: options.level,
    name: options.name,
    base: { node: options.nodeId, pid: process.pid },
    ...(format === undefined ? {} : { format }),
  });
  return options.destination !== undefined ? pino(pinoOptions, options.destination) : pino(pinoOptions);
}

export type { Logger };
