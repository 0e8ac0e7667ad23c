import { eventSubject, type AllotError, type AllotEvent, type AllocationRequest } from '@allot/core';
import type { HostRecord } from '@allot/managers';
import { publishDurable } from '@allot/nats';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Logger } from 'pino';

/** The audit event a journaled record stands for (records and events share their kind names). */
export function eventOfRecord(nodeId: string, record: HostRecord): AllotEvent {
  const base = { nodeId, at: record.at };
  switch (record.kind) {
    case 'allocated':
    case 'reserved': {
      const a = record.allocation;
      return { ...base, kind: record.kind, requestId: a.requestId, allocationId: a.id, tenantId: a.tenantId, resources: a.granted, ...(a.cpu ? { cpuset: a.cpu.cpuset } : {}) };
    }
    case 'activated':
      return { ...base, kind: 'activated', allocationId: record.allocationId, requestId: record.requestId };
    case 'released':
      return { ...base, kind: 'released', allocationId: record.allocationId, requestId: record.requestId, ...(record.reason ? { reason: record.reason } : {}) };
    case 'expired':
      return { ...base, kind: 'expired', allocationId: record.allocationId, reason: 'reservation expired' };
    case 'limits_updated':
      return { ...base, kind: 'limits_updated', reason: `${record.resourceType} limits changed${record.force ? ' (forced)' : ''}` };
    case 'cordoned':
    case 'uncordoned':
      return { ...base, kind: record.kind, ...(record.reason ? { reason: record.reason } : {}) };
  }
}

export function refusalEvent(nodeId: string, request: AllocationRequest, error: AllotError, at: number): AllotEvent {
  return { kind: 'refused', nodeId, at, requestId: request.requestId, tenantId: request.tenantId, resources: request.resources, error };
}

/**
 * Publishes audit events to the ALLOT_EVENTS stream in order, with a dedupe id (node + ledger seq), so a republish
 * after a reconnect is not counted twice. While NATS is away, events wait in a bounded outbox; past the bound the
 * oldest are dropped and counted (the ledger on the host stays the record of truth).
 */
export class EventPublisher {
  readonly #js: JetStreamClient;
  readonly #log: Logger;
  readonly #outbox: Array<{ event: AllotEvent; msgId: string }> = [];
  readonly #max: number;
  #draining = false;
  #stopped = false;
  dropped = 0;
  published = 0;

  constructor(js: JetStreamClient, log: Logger, maxOutbox = 10_000) {
    this.#js = js;
    this.#log = log;
    this.#max = maxOutbox;
  }

  publish(event: AllotEvent, msgId: string): void {
    if (this.#outbox.length >= this.#max) {
      this.#outbox.shift();
      this.dropped += 1;
    }
    this.#outbox.push({ event, msgId });
    void this.drain();
  }

  /** Sends what waits, one at a time (order matters in an audit log); stops at the first failure until the next call. */
  async drain(): Promise<void> {
    if (this.#draining || this.#stopped) return;
    this.#draining = true;
    try {
      while (this.#outbox.length > 0 && !this.#stopped) {
        const next = this.#outbox[0]!;
        const sent = await publishDurable(this.#js, eventSubject(next.event.nodeId, next.event.kind), next.event, { msgId: next.msgId, timeoutMs: 2_000 });
        if (!sent.ok) {
          this.#log.debug({ err: sent.error, pending: this.#outbox.length }, 'events: publish failed, will retry');
          break;
        }
        this.#outbox.shift();
        this.published += 1;
      }
    } finally {
      this.#draining = false;
    }
  }

  get pending(): number {
    return this.#outbox.length;
  }

  stop(): void {
    this.#stopped = true;
  }
}
