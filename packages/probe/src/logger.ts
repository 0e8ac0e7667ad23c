import type { Logger } from '@allot/core';

/** The one logging method a probe needs. */
export type ProbeLogger = Pick<Logger, 'warn'>;

/** Logs each distinct problem once per probe: a fallback taken every second must not flood the log. */
export class WarnOnce {
  readonly #logger: ProbeLogger | undefined;
  readonly #seen = new Set<string>();

  constructor(logger: ProbeLogger | undefined) {
    this.#logger = logger;
  }

  warn(key: string, obj: Record<string, unknown>, msg: string): void {
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.#logger?.warn(obj, msg);
  }
}
