/**
 * The logging shape every package takes: pino's call shape (fields first, then a fixed message), so a process's pino
 * logger fits as is and nothing builds strings to log. A package that needs fewer methods asks for a Pick of it.
 */
export interface Logger {
  debug(fields: object, msg?: string): void;
  info(fields: object, msg?: string): void;
  warn(fields: object, msg?: string): void;
  error(fields: object, msg?: string): void;
}
