import { randomUUID } from 'node:crypto';
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { err, errorOf, ok, type AllotError, type Result } from '@allot/core';
import { NODE_LEASE_RENEW_MS, NODE_LEASE_TTL_MS } from '@allot/protocol';
import type { Logger } from 'pino';
import { STATE_FILE_MODE } from './state-dir.ts';

/**
 * One agent per node id. Two agents configured with the same node id (a copied config, a re-imaged host) would each
 * keep their own ledger of one host and both commit against its full capacity. So an agent serves only while it holds
 * the node's lease: one key per node id in the `allot_nodes` KV bucket, whose max_age is the lease TTL, renewed by
 * compare-and-set. A live lease of another holder refuses the start; a renewal that finds another holder stops the
 * agent. The ledger's lock file already stops two agents sharing a state directory, so the state directory's identity
 * tells "a previous boot of this agent" (taken over at once) from "another agent" (refused).
 */

/** Who holds a node's lease; stored as JSON so that `nats kv get allot_nodes <node>` names the holder. */
export interface LeaseHolder {
  /** The state directory's identity: a random id created on its first start (see loadStateIdentity). */
  readonly identity: string;
  readonly bootId: string;
  readonly host: string;
  readonly pid: number;
  /** When this holder took the lease (epoch ms, for operators). */
  readonly since: number;
}

/** The part of a JetStream KV bucket the lease uses (nats.js KV fits it). Every call may throw. */
export interface LeaseKv {
  get(key: string): Promise<{ value: Uint8Array; revision: number; operation: string } | null>;
  /** Creates the key only when it is absent (or deleted); throws when it exists. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** Writes the key only when its last revision is `revision`; throws otherwise. */
  update(key: string, value: Uint8Array, revision: number): Promise<number>;
  delete(key: string, opts: { previousSeq: number }): Promise<void>;
}

/** The details of the error that refuses a start because another agent holds the node. */
export const LEASE_HELD = 'node_lease_held';

export function describeHolder(h: LeaseHolder): string {
  return `the agent on host ${h.host} (pid ${h.pid}, boot ${h.bootId}, state identity ${h.identity}, since ${new Date(h.since).toISOString()})`;
}

function encodeHolder(h: LeaseHolder): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(h));
}

function decodeHolder(value: Uint8Array): LeaseHolder | undefined {
  try {
    const h = JSON.parse(new TextDecoder().decode(value)) as Partial<LeaseHolder>;
    if (typeof h.identity !== 'string' || typeof h.bootId !== 'string' || typeof h.host !== 'string' || typeof h.pid !== 'number')
      return undefined;
    return { identity: h.identity, bootId: h.bootId, host: h.host, pid: h.pid, since: typeof h.since === 'number' ? h.since : 0 };
  } catch {
    return undefined;
  }
}

/** Anything unreadable under the key counts as another holder: refusing is the safe reading. */
const UNKNOWN_HOLDER: LeaseHolder = { identity: 'unknown', bootId: 'unknown', host: 'unknown', pid: 0, since: 0 };

type Current = { kind: 'absent' } | { kind: 'held'; holder: LeaseHolder; revision: number };

async function readLease(kv: LeaseKv, key: string): Promise<Current> {
  const entry = await kv.get(key);
  if (entry === null || entry.operation !== 'PUT') return { kind: 'absent' };
  return { kind: 'held', holder: decodeHolder(entry.value) ?? UNKNOWN_HOLDER, revision: entry.revision };
}

export interface NodeLeaseOptions {
  readonly log: Logger;
  /** Called once when the lease is lost to another holder: the agent must stop serving at once. */
  readonly onLost: (error: AllotError) => void;
  readonly renewEveryMs?: number;
}

/** A held lease, renewed in the background until released or lost. */
export class NodeLease {
  readonly #kv: LeaseKv;
  readonly #key: string;
  readonly #holder: LeaseHolder;
  readonly #value: Uint8Array;
  readonly #opts: NodeLeaseOptions;
  #revision: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #renewing: Promise<void> = Promise.resolve();
  #done = false;

  private constructor(kv: LeaseKv, key: string, holder: LeaseHolder, revision: number, opts: NodeLeaseOptions) {
    this.#kv = kv;
    this.#key = key;
    this.#holder = holder;
    this.#value = encodeHolder(holder);
    this.#revision = revision;
    this.#opts = opts;
    this.#schedule();
  }

  /**
   * Takes the lease of `nodeId`: created when absent, taken over by compare-and-set when a previous boot of the same
   * state directory holds it; refused with `conflict` {reason: node_lease_held, holder} when another holds it, and
   * `unavailable` when JetStream does not answer (the caller retries).
   */
  static async acquire(kv: LeaseKv, nodeId: string, holder: LeaseHolder, opts: NodeLeaseOptions): Promise<Result<NodeLease>> {
    const value = encodeHolder(holder);
    for (let race = 0; race < 5; race++) {
      let current: Current;
      try {
        current = await readLease(kv, nodeId);
      } catch (e) {
        return err('unavailable', `cannot read the lease of node ${nodeId}: ${(e as Error).message}`);
      }
      if (current.kind === 'held' && current.holder.identity !== holder.identity) {
        return err(
          'conflict',
          `node ${nodeId} is already served by ${describeHolder(current.holder)}; two agents must not share a node id (the lease expires ${NODE_LEASE_TTL_MS / 1000} s after its holder stops)`,
          {
            reason: LEASE_HELD,
            nodeId,
            holder: current.holder,
          },
        );
      }
      try {
        // Lost a race (another write since the read): read again and decide again.
        const revision = current.kind === 'absent' ? await kv.create(nodeId, value) : await kv.update(nodeId, value, current.revision);
        if (current.kind === 'held')
          opts.log.info({ previous: current.holder }, 'took over the node lease from a previous boot of this state directory');
        return ok(new NodeLease(kv, nodeId, holder, revision, opts));
      } catch (e) {
        opts.log.debug({ err: e }, 'node lease write raced; reading again');
      }
    }
    return err('unavailable', `the lease of node ${nodeId} keeps changing under this agent`);
  }

  /** Stops renewing and deletes the lease if it is still ours, so a successor need not wait for it to expire. */
  async release(): Promise<void> {
    this.#stopRenewing();
    await this.#renewing;
    await this.#kv.delete(this.#key, { previousSeq: this.#revision }).catch(() => undefined);
  }

  #stopRenewing(): void {
    this.#done = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#done) return;
    this.#timer = setTimeout(() => {
      this.#renewing = this.#renew().finally(() => this.#schedule());
    }, this.#opts.renewEveryMs ?? NODE_LEASE_RENEW_MS);
    this.#timer.unref();
  }

  async #renew(): Promise<void> {
    try {
      this.#revision = await this.#kv.update(this.#key, this.#value, this.#revision);
      return;
    } catch (e) {
      if (this.#done) return;
      this.#opts.log.debug({ err: e }, 'node lease renewal refused or failed; reading the lease');
    }
    let current: Current;
    try {
      current = await readLease(this.#kv, this.#key);
    } catch (e) {
      // JetStream unreachable: keep serving and retry; nobody else can take the lease without it either.
      this.#opts.log.warn({ err: e }, 'cannot renew the node lease (JetStream not answering); retrying');
      return;
    }
    if (this.#done) return;
    if (current.kind === 'held' && current.holder.identity === this.#holder.identity && current.holder.bootId === this.#holder.bootId) {
      this.#revision = current.revision; // our own write landed though its reply was lost
      return;
    }
    if (current.kind === 'absent') {
      // It lapsed (JetStream was out longer than the TTL) and nobody took it: take it again.
      try {
        this.#revision = await this.#kv.create(this.#key, this.#value);
        this.#opts.log.warn('the node lease had lapsed; taken again');
      } catch (e) {
        this.#opts.log.warn({ err: e }, 'the node lease lapsed and could not be taken again yet; retrying');
      }
      return;
    }
    this.#stopRenewing();
    this.#opts.onLost(
      errorOf(
        'conflict',
        `the lease of node ${this.#key} is now held by ${describeHolder(current.holder)}; this agent stops serving so that one agent answers for the node`,
        {
          reason: 'node_lease_lost',
          nodeId: this.#key,
          holder: current.holder,
        },
      ),
    );
  }
}

/**
 * The state directory's identity: a random id written on first start. Call it only while holding the ledger's lock
 * (two agents never share a state directory), so the id names one agent's host state across its restarts.
 */
export async function loadStateIdentity(stateDir: string): Promise<string> {
  const path = join(stateDir, 'node-identity');
  try {
    const text = (await readFile(path, 'utf8')).trim();
    if (/^[0-9a-f-]{36}$/.test(text)) return text;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const identity = randomUUID();
  const tmp = `${path}.tmp`;
  const file = await open(tmp, 'w', STATE_FILE_MODE);
  try {
    await file.chmod(STATE_FILE_MODE);
    await file.writeFile(`${identity}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
  const dir = await open(stateDir, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
  return identity;
}
