import { decode, encode, err, ok, type Result } from '@allot/core';
import type { z } from 'zod';
import type { KV } from './nats-deps.ts';

/** A value read from KV with the revision a compare-and-set must name. */
export interface Versioned<T> {
  readonly value: T;
  readonly revision: number;
}

/** Request ids may hold `:`, which KV keys may not; `/` is a KV key character no request id holds, so this is 1:1. */
export function kvKey(id: string): string {
  return id.replaceAll(':', '/');
}

function isWrongRevision(e: unknown): boolean {
  return e instanceof Error && /wrong last sequence|key exists/i.test(e.message);
}

/**
 * Typed msgpack values in a KV bucket with create-if-absent and compare-and-set. A lost race is `conflict` (re-read
 * and decide again); NATS trouble is `unavailable`; a stored value that does not validate is `internal`.
 */
export class KvStore<S extends z.ZodType> {
  readonly #kv: KV;
  readonly #schema: S;
  readonly #what: string;

  constructor(kv: KV, schema: S, what: string) {
    this.#kv = kv;
    this.#schema = schema;
    this.#what = what;
  }

  get kv(): KV {
    return this.#kv;
  }

  async get(id: string): Promise<Result<Versioned<z.output<S>> | null>> {
    let entry;
    try {
      entry = await this.#kv.get(kvKey(id));
    } catch (e) {
      return err('unavailable', `${this.#what} ${id}: cannot read: ${(e as Error).message}`, { id });
    }
    if (entry === null || entry.operation !== 'PUT' || entry.length === 0) return ok(null);
    const value = decode(this.#schema, entry.value, Number.POSITIVE_INFINITY);
    if (!value.ok) return err('internal', `${this.#what} ${id}: stored value is invalid: ${value.error.message}`, { id });
    return ok({ value: value.value, revision: entry.revision });
  }

  /** Creates the value when the key is absent; `conflict` when it exists. */
  async create(id: string, value: z.output<S>): Promise<Result<number>> {
    try {
      return ok(await this.#kv.create(kvKey(id), encode(value)));
    } catch (e) {
      if (isWrongRevision(e)) return err('conflict', `${this.#what} ${id} exists`, { id });
      return err('unavailable', `${this.#what} ${id}: cannot create: ${(e as Error).message}`, { id });
    }
  }

  /** Replaces the value if it is still at `revision`; `conflict` when someone wrote it since. */
  async update(id: string, value: z.output<S>, revision: number): Promise<Result<number>> {
    try {
      return ok(await this.#kv.update(kvKey(id), encode(value), revision));
    } catch (e) {
      if (isWrongRevision(e)) return err('conflict', `${this.#what} ${id} changed since revision ${revision}`, { id, revision });
      return err('unavailable', `${this.#what} ${id}: cannot update: ${(e as Error).message}`, { id });
    }
  }
}
