import { pino, type Logger } from 'pino';

/**
 * Structured logs: JSON lines by default (what log shippers and the test harness read), pretty when a person is
 * watching a terminal. Bindings (node, component) travel in child loggers, never in message strings.
 */
export function createLogger(options: { level: string; name: string; nodeId: string; pretty?: boolean }): Logger {
  const pretty = options.pretty ?? (process.stdout.isTTY === true && process.env.ALLOT_LOG_FORMAT !== 'json');
  const base = { level: options.level, name: options.name, base: { node: options.nodeId, pid: process.pid } };
  if (pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } });
  }
  return pino(base);
}

export type { Logger };
