import type { AllotEvent } from '@allot/protocol';
import { DeliverPolicy } from '@nats-io/jetstream';

/**
 * What `allot events` reads: where in the stream to start (a sequence cursor or a time, so the server skips what comes
 * before instead of the CLI reading the whole stream), which events to print (tenant and request id are in the
 * payload, so they are matched here) and where to stop (a time, or `limit` printed: bounded output).
 */
export interface EventsQuery {
  readonly tenantId?: string;
  readonly requestId?: string;
  /** Epoch ms, inclusive: stream messages stored at or after. */
  readonly since?: number;
  /** Epoch ms, inclusive: stop at the first message stored after. */
  readonly until?: number;
  /** Stream sequence: only messages after it (the cursor a previous page printed). */
  readonly afterSeq?: number;
  readonly limit: number;
}

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `10m`, `2h`, `30s`, `7d` ago, or an ISO 8601 instant; anything else is undefined. */
export function parseInstant(text: string, now: number): number | undefined {
  const relative = /^(\d{1,6})([smhd])$/.exec(text);
  if (relative !== null) return now - Number(relative[1]) * (UNIT_MS[relative[2] as string] as number);
  // An ISO date or date-time only: Date.parse takes much else it should not (e.g. "1").
  if (!/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : at;
}

/** The ordered consumer's start: after the cursor, else at the time, else the whole stream. */
export function startOf(q: EventsQuery): { deliver_policy: DeliverPolicy; opt_start_seq?: number; opt_start_time?: string } {
  if (q.afterSeq !== undefined) return { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: q.afterSeq + 1 };
  if (q.since !== undefined) return { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(q.since).toISOString() };
  return { deliver_policy: DeliverPolicy.All };
}

export function matches(e: AllotEvent, q: EventsQuery): boolean {
  return (q.tenantId === undefined || e.tenantId === q.tenantId) && (q.requestId === undefined || e.requestId === q.requestId);
}

/** A message stored after `until` ends the read: the stream is in storage-time order. */
export function pastUntil(storedAtMs: number, q: EventsQuery): boolean {
  return q.until !== undefined && storedAtMs > q.until;
}
