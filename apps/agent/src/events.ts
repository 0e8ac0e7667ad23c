import { eventSubject, type AllotEvent } from '@allot/protocol';
import type { AllotError, AllocationRequest } from '@allot/core';
import type { HostRecord } from '@allot/managers';
import type { AsyncJetStreamPublisher } from '@allot/nats';
import type { Logger } from 'pino';

/** The audit event a journaled record stands for (records and events share their kind names). */
export function eventOfRecord(nodeId: string, record: HostRecord): AllotEvent {
  const base = { nodeId, at: record.at };
  switch (record.kind) {
    case 'allocated':
    case 'reserved': {
      const a = record.allocation;
      return {
        ...base,
        kind: record.kind,
        requestId: a.requestId,
        allocationId: a.id,
        tenantId: a.tenantId,
        resources: a.granted,
        ...(a.cpu ? { cpuset: a.cpu.cpuset } : {}),
      };
    }
    case 'activated':
      return { ...base, kind: 'activated', allocationId: record.allocationId, requestId: record.requestId };
    case 'released':
      // The placement's request id (the quota-events consumer finds its intent by it); records from before it was
      // journaled name only the release's.
      return {
        ...base,
        kind: 'released',
        allocationId: record.allocationId,
        requestId: record.allocationRequestId ?? record.requestId,
        ...(record.reason ? { reason: record.reason } : {}),
      };
    case 'expired':
      return {
        ...base,
        kind: 'expired',
        allocationId: record.allocationId,
        ...(record.requestId ? { requestId: record.requestId } : {}),
        reason: 'reservation expired',
      };
    case 'limits_updated':
      return { ...base, kind: 'limits_updated', reason: `${record.resourceType} limits changed${record.force ? ' (forced)' : ''}` };
    case 'cordoned':
    case 'uncordoned':
      return { ...base, kind: record.kind, ...(record.reason ? { reason: record.reason } : {}) };
    case 'fenced':
      return { ...base, kind: 'fenced', requestId: record.requestId, reason: `fence ${record.fence}` };
    case 'resized': {
      // The placement's request id (readers find its intent by it); the resize's own id and the old amounts in reason.
      const a = record.allocation;
      const { previous: p } = record;
      const reason = `resize ${record.requestId}: ${p.memoryMiB} MiB, ${p.vcpus} vCPUs -> ${a.granted.memoryMiB} MiB, ${a.granted.vcpus} vCPUs`;
      return {
        ...base,
        kind: 'resized',
        requestId: a.requestId,
        allocationId: a.id,
        tenantId: a.tenantId,
        resources: a.granted,
        ...(a.cpu ? { cpuset: a.cpu.cpuset } : {}),
        reason,
      };
    }
    case 'preempting': {
      const a = record.allocation;
      return {
        ...base,
        kind: 'reserved',
        requestId: a.requestId,
        allocationId: a.id,
        tenantId: a.tenantId,
        resources: a.granted,
        reason: `preempting ${record.victims.map((v) => v.allocationId).join(', ')} at ${a.expiresAt ?? record.at}`,
      };
    }
    case 'preempted': {
      const a = record.allocation;
      return {
        ...base,
        kind: 'allocated',
        requestId: a.requestId,
        allocationId: a.id,
        tenantId: a.tenantId,
        resources: a.granted,
        ...(a.cpu ? { cpuset: a.cpu.cpuset } : {}),
        reason: `preempted ${record.victims.map((v) => v.allocationId).join(', ')}`,
      };
    }
  }
}

/**
 * Every audit event a durable record stands for, each with its dedupe id: the record's event under node + seq, and
 * for a preemption one `preempted` event per victim (under node + seq + victim index) naming the placement's request
 * id (the quota-events consumer ends its intent) and the preemptor's allocation and request id.
 */
export function eventsOfRecord(nodeId: string, record: HostRecord): { event: AllotEvent; msgId: string }[] {
  const out = [{ event: eventOfRecord(nodeId, record), msgId: `${nodeId}-${record.seq}` }];
  if (record.kind !== 'preempted') return out;
  const preemptedBy = { allocationId: record.allocation.id, requestId: record.allocation.requestId };
  record.victims.forEach((v, i) => {
    out.push({
      event: {
        kind: 'preempted',
        nodeId,
        at: record.at,
        allocationId: v.allocationId,
        requestId: v.allocationRequestId,
        preemptedBy,
        reason: `preempted by ${preemptedBy.requestId} (allocation ${preemptedBy.allocationId})`,
      },
      msgId: `${nodeId}-${record.seq}-v${i}`,
    });
  });
  return out;
}

export function refusalEvent(nodeId: string, request: AllocationRequest, error: AllotError, at: number): AllotEvent {
  return { kind: 'refused', nodeId, at, requestId: request.requestId, tenantId: request.tenantId, resources: request.resources, error };
}

/**
 * Publishes audit events to the ALLOT_EVENTS stream, with a dedupe id (node + ledger seq) so a republish after a
 * reconnect is stored once. Events queue in an outbox from the agent's first moment (expiries journaled during
 * recovery happen before NATS is connected) and are sent with up to `window` publishes awaiting their acks at once
 * (AsyncJetStreamPublisher): one connection keeps them in order, and waiting for each ack before the next would cap
 * the rate at one event per round trip, far below the allocation rate. On a failure everything not yet acknowledged is sent again from the
 * oldest (duplicates are dropped by the stream's dedupe window). The outbox is bounded: past `maxOutbox` the oldest
 * events are dropped and counted; the host's ledger stays the record of truth.
 */
export class EventPublisher {
  readonly #log: Logger;
  readonly #max: number;
  readonly #window: number;
  #publisher: AsyncJetStreamPublisher | undefined;
  /** Queued or in flight, oldest first; `sent` marks those published and awaiting their ack. */
  #outbox: Array<{ event: AllotEvent; msgId: string; sent: boolean; acked: boolean; attempt: number }> = [];
  #inFlight = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  dropped = 0;
  published = 0;

  constructor(log: Logger, options: { maxOutbox?: number; window?: number } = {}) {
    this.#log = log;
    this.#max = options.maxOutbox ?? 100_000;
    this.#window = options.window ?? 256;
  }

  /** Starts sending through this publisher (after the first connect). */
  attach(publisher: AsyncJetStreamPublisher): void {
    this.#publisher = publisher;
    this.#pump();
  }

  publish(event: AllotEvent, msgId: string): void {
    if (this.#outbox.length >= this.#max) {
      const oldest = this.#outbox.findIndex((e) => !e.sent);
      if (oldest < 0) return;
      this.#outbox.splice(oldest, 1);
      this.dropped += 1;
    }
    this.#outbox.push({ event, msgId, sent: false, acked: false, attempt: 0 });
    this.#pump();
  }

  /** After a reconnect: send again what was never acknowledged. */
  drain(): Promise<void> {
    for (const entry of this.#outbox) if (!entry.acked) entry.sent = false;
    this.#inFlight = 0;
    this.#pump();
    return Promise.resolve();
  }

  #pump(): void {
    const publisher = this.#publisher;
    if (publisher === undefined || this.#stopped) return;
    for (const entry of this.#outbox) {
      if (this.#inFlight >= this.#window) break;
      if (entry.sent) continue;
      entry.sent = true;
      entry.attempt += 1;
      const attempt = entry.attempt;
      this.#inFlight += 1;
      void publisher.publish(eventSubject(entry.event.nodeId, entry.event.kind), entry.event, entry.msgId).then((sent) => {
        if (entry.attempt !== attempt) return; // a drain() sent it again meanwhile; that send counts
        this.#inFlight -= 1;
        if (sent.ok) {
          entry.acked = true;
          this.published += 1;
          this.#trimAcked();
          this.#pump();
        } else {
          entry.sent = false;
          this.#log.debug({ err: sent.error, pending: this.#outbox.length }, 'events: publish failed, will retry');
          this.#retryLater();
        }
      });
    }
  }

  #trimAcked(): void {
    let n = 0;
    while (n < this.#outbox.length && this.#outbox[n]!.acked) n += 1;
    if (n > 0) this.#outbox.splice(0, n);
  }

  #retryLater(): void {
    if (this.#retryTimer !== undefined || this.#stopped) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#pump();
    }, 500);
    this.#retryTimer.unref();
  }

  get pending(): number {
    return this.#outbox.length;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
  }
}
