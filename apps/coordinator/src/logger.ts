import pino, { type Logger } from 'pino';

/**
 * pino JSON lines on stdout; pretty-printed (pino-pretty) when stdout is a terminal. The coordinator id rides on every
 * line as a binding, never concatenated into messages.
 */
export function createLogger(level: string, coordinatorId: string): Logger {
  const pretty = process.stdout.isTTY === true;
  return pino({ level, base: { coordinator: coordinatorId, pid: process.pid }, ...(pretty ? { transport: { target: 'pino-pretty' } } : {}) });
}
