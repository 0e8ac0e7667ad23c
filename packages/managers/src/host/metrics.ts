import { metrics, type Attributes, type Counter, type Histogram } from '@opentelemetry/api';

/** Operations counted by a manager. */
export type Operation = 'allocate' | 'reserve' | 'release' | 'activate' | 'resize';

/**
 * A manager's metrics through @opentelemetry/api (meter `allot`; a no-op until the process registers an SDK): counts
 * by operation, outcome and refusal reason, and the time from a request to its durable reply. Lives outside the
 * actor's behaviour so it survives restarts.
 */
export class MetricsRecorder {
  readonly #resource: string;
  readonly #allocations: Counter;
  readonly #otherOps: Counter;
  readonly #histogram: Histogram;
  readonly #okAttributes: Record<Operation, Attributes>;

  constructor(resource: string) {
    this.#resource = resource;
    const meter = metrics.getMeter('allot');
    this.#allocations = meter.createCounter('allot_allocations_total', {
      description: 'Allocate and reserve requests by outcome and refusal reason',
    });
    this.#otherOps = meter.createCounter('allot_allocation_changes_total', {
      description: 'Release, activate and resize requests by outcome and refusal reason',
    });
    this.#histogram = meter.createHistogram('allot_allocation_duration_seconds', {
      description: 'Time from an allocate or reserve request to its durable reply',
      unit: 's',
    });
    // Attribute objects for the common case are built once: the hot path records without allocating.
    const okOf = (operation: Operation): Attributes => ({ operation, outcome: 'ok', reason: 'none', resource });
    this.#okAttributes = {
      allocate: okOf('allocate'),
      reserve: okOf('reserve'),
      release: okOf('release'),
      activate: okOf('activate'),
      resize: okOf('resize'),
    };
  }

  /** One operation's outcome; `ms` is the time from the call to its durable reply. */
  record(op: Operation, code: string | undefined, ms: number): void {
    const attributes =
      code === undefined ? this.#okAttributes[op] : { operation: op, outcome: 'refused', reason: code, resource: this.#resource };
    if (op === 'allocate' || op === 'reserve') {
      this.#allocations.add(1, attributes);
      this.#histogram.record(ms / 1000, attributes);
    } else {
      this.#otherOps.add(1, attributes);
    }
  }
}
