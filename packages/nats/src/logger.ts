/**
 * The logging this package needs: pino's call shape (fields first, then a fixed message), so an agent's pino logger
 * fits as is and nothing here builds strings to log.
 */
export type NatsLogger = {
  debug(fields: object, msg?: string): void;
  info(fields: object, msg?: string): void;
  warn(fields: object, msg?: string): void;
  error(fields: object, msg?: string): void;
};

/** A logger that drops everything: for tests and benchmarks. */
export const silentLogger: NatsLogger = { debug() {}, info() {}, warn() {}, error() {} };
