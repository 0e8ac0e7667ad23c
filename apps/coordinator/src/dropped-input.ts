import { metrics, type Counter } from '@opentelemetry/api';
import type { Logger } from 'pino';

/*
 * Hostile or broken input that reaches a callback (a stream consumer, a timer, a broadcast) is dropped, never thrown:
 * a throw there has no caller to answer and would take the coordinator down. Each drop is counted
 * (allot_dropped_input_total{source,reason}) and logged, at most once per `logEveryMs` per source and reason, with the
 * number dropped since the last line, so a flood of bad messages cannot flood the log either.
 */

/** Sources are fixed names and reasons a short fixed set: the metric's label values stay bounded. */
export class DroppedInput {
  readonly #logger: Logger;
  readonly #counter: Counter;
  readonly #logEveryMs: number;
  readonly #now: () => number;
  /** Per source+reason: drops since the last log line and when that line was written. Bounded by the fixed label set. */
  readonly #lastLogged = new Map<string, { at: number; since: number }>();
  readonly counts = new Map<string, number>();

  constructor(logger: Logger, options: { logEveryMs?: number; now?: () => number } = {}) {
    this.#logger = logger;
    this.#counter = metrics.getMeter('allot').createCounter('allot_dropped_input_total', {
      description: 'Messages and callbacks dropped on bad data instead of crashing, by source and reason',
    });
    this.#logEveryMs = options.logEveryMs ?? 10_000;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Counts one drop; logs it unless this source and reason were logged within logEveryMs. */
  drop(source: string, reason: string, fields: Record<string, unknown> = {}): void {
    const key = `${source}/${reason}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.#counter.add(1, { source, reason });
    const now = this.#now();
    const last = this.#lastLogged.get(key);
    if (last !== undefined && now - last.at < this.#logEveryMs) {
      last.since += 1;
      return;
    }
    this.#logger.warn({ ...fields, source, reason, droppedSinceLastLog: last?.since ?? 0 }, 'bad input dropped');
    this.#lastLogged.set(key, { at: now, since: 0 });
  }

  /** How many were dropped for this source (and reason, when given). */
  count(source: string, reason?: string): number {
    if (reason !== undefined) return this.counts.get(`${source}/${reason}`) ?? 0;
    let n = 0;
    for (const [key, v] of this.counts) if (key.startsWith(`${source}/`)) n += v;
    return n;
  }

  /** Runs a callback's body; a throw is counted as `source`/`threw` instead of reaching the event loop. */
  guard(source: string, body: () => void): void {
    try {
      body();
    } catch (e) {
      this.drop(source, 'threw', { error: (e as Error)?.message ?? String(e) });
    }
  }
}

/** The node id token of a subject `<prefix>.<nodeId>[.<rest>]`, or undefined when the subject is not under prefix. */
export function subjectNodeToken(subject: string, prefix: string): string | undefined {
  if (!subject.startsWith(`${prefix}.`)) return undefined;
  const rest = subject.slice(prefix.length + 1);
  const dot = rest.indexOf('.');
  const token = dot === -1 ? rest : rest.slice(0, dot);
  return token === '' ? undefined : token;
}

/**
 * Why an event disagrees with its subject `<eventsPrefix>.<nodeId>.<kind>`, or undefined when it agrees. Only agent X
 * may publish under X (NATS permissions), so the body's nodeId must be X; the coordinators' own subject (`cluster`)
 * names other nodes in its events (node_lost ...) and is trusted when `clusterToken` is given.
 */
export function eventSubjectMismatch(
  subject: string,
  prefix: string,
  event: { nodeId: string; kind: string },
  clusterToken?: string,
): 'node_mismatch' | 'kind_mismatch' | undefined {
  const node = subjectNodeToken(subject, prefix);
  if (node === undefined) return 'node_mismatch';
  if (node !== event.nodeId && node !== clusterToken) return 'node_mismatch';
  return subject === `${prefix}.${node}.${event.kind}` ? undefined : 'kind_mismatch';
}
