/**
 * Scheduler clients: concurrent workers that issue place, activate and release requests with seeded, fixed request ids
 * and retry the same id on timeout/unavailable, as a real scheduler does. Some places are reservations (a few seconds'
 * hold): about half of them are activated through `allot.sched.activate`, the others are left to expire. Every reply is
 * recorded.
 */
import type { PlaceRequestInput } from '@allot/protocol';
import type { ChaosCluster } from './topology.ts';
// The placement package's seeded generator (mulberry32): a scenario's requests are the same on every run.
import { seededRandom } from '../../packages/placement/src/random.ts';

/** One answer to one attempt; an error's message is kept (shortened) to tell who gave up: the coordinator or the client. */
export type ReplyRecord = { at: number; ok: boolean; code?: string; message?: string; nodeId?: string; allocationId?: string };
export type OpRecord = {
  kind: 'place' | 'release' | 'activate';
  requestId: string;
  /** For a release or an activate: the placement's request id. */
  placementRequestId?: string;
  /** For a place: the tenant, and the reservation's ttl when it asked for a hold rather than an allocation. */
  tenantId?: string;
  reservationTtlMs?: number;
  startedAt: number;
  endedAt: number;
  replies: ReplyRecord[];
  /** acked: an ok reply; refused: a definitive error; timed_out: only timeouts/unavailable until the deadline. */
  outcome: 'acked' | 'refused' | 'timed_out';
  code?: string;
  nodeId?: string;
  allocationId?: string;
};

export type WorkloadOptions = {
  seed: number;
  prefix: string;
  workers: number;
  /** Workers stop starting new operations after this long; operations in flight still retry to their deadline. */
  durationMs: number;
  /** Give up retrying one operation after this long (the client then records it timed out). */
  opDeadlineMs: number;
  requestTimeoutMs: number;
  releaseProbability: number;
  /** Share of places that are reservations, and share of acknowledged reservations the worker then activates. */
  reservationProbability: number;
  activateProbability: number;
  /** A reservation holds for a ttl drawn from this range. */
  reservationTtlMs: { min: number; max: number };
};

/** Tenant of worker w: two workers per tenant. */
export const tenantOf = (w: number): string => `t${w % 3}`;

const RETRYABLE = new Set(['timeout', 'unavailable']);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Workload {
  readonly ops: OpRecord[] = [];
  readonly #cluster: ChaosCluster;
  readonly #o: WorkloadOptions;
  #lastAnswerAt = 0;
  #stopped = false;

  constructor(cluster: ChaosCluster, options: WorkloadOptions) {
    this.#cluster = cluster;
    this.#o = options;
  }

  /** Workers start no new operation from now on (before durationMs is up); those in flight still finish. */
  stop(): void {
    this.#stopped = true;
  }

  /** When the last operation got its final answer (or gave up). */
  get lastAnswerAt(): number {
    return this.#lastAnswerAt;
  }

  async run(): Promise<void> {
    const until = Date.now() + this.#o.durationMs;
    await Promise.all(Array.from({ length: this.#o.workers }, (_, w) => this.#worker(w, until)));
  }

  async #worker(w: number, until: number): Promise<void> {
    const random = seededRandom(this.#o.seed * 1000 + w);
    const tenantId = tenantOf(w);
    const held: string[] = [];
    for (let i = 0; Date.now() < until && !this.#stopped; i++) {
      let pause = 5 + Math.floor(random() * 20);
      if (held.length > 0 && random() < this.#o.releaseProbability) {
        const placement = held.splice(Math.floor(random() * held.length), 1)[0] as string;
        await this.#op(
          'release',
          `${placement}-rel`,
          { requestId: `${placement}-rel`, placementRequestId: placement, tenantId },
          { placementRequestId: placement },
        );
      } else {
        const requestId = `${this.#o.prefix}-w${w}-${i}`;
        const exclusive = random() < 0.1;
        const { min, max } = this.#o.reservationTtlMs;
        const ttlMs = random() < this.#o.reservationProbability ? min + Math.floor(random() * (max - min + 1)) : undefined;
        const req: PlaceRequestInput = {
          request: {
            requestId,
            tenantId,
            resources: {
              memoryMiB: [256, 512, 1024, 2048][Math.floor(random() * 4)] as number,
              vcpus: exclusive ? 1 + Math.floor(random() * 2) : 1 + Math.floor(random() * 3),
            },
            cpu: { exclusive, numa: 'any' },
            ...(ttlMs === undefined ? {} : { reservation: { ttlMs } }),
          },
          placement: { strategy: random() < 0.5 ? 'spread' : 'binpack', constraints: [] },
        };
        const rec = await this.#op('place', requestId, req, { tenantId, ...(ttlMs === undefined ? {} : { reservationTtlMs: ttlMs }) });
        if (rec.outcome === 'acked' && ttlMs === undefined) held.push(requestId);
        else if (rec.outcome === 'acked' && rec.allocationId !== undefined && random() < this.#o.activateProbability) {
          // Activated some time into the hold, possibly too late under a fault: then it expires like the others.
          await sleep(Math.floor(random() * Math.min(1_500, ttlMs ?? 0)));
          const act = await this.#op(
            'activate',
            `${requestId}-act`,
            { requestId: `${requestId}-act`, allocationId: rec.allocationId, tenantId },
            { placementRequestId: requestId },
          );
          if (act.outcome === 'acked') held.push(requestId);
        }
        // A tenant at its limit is told at once: back off instead of spinning on quota_exceeded.
        if (rec.code === 'quota_exceeded') pause = 250;
      }
      await sleep(pause);
    }
  }

  async #op(kind: OpRecord['kind'], requestId: string, payload: unknown, extra: Partial<OpRecord> = {}): Promise<OpRecord> {
    const rec: OpRecord = { kind, requestId, startedAt: Date.now(), endedAt: 0, replies: [], outcome: 'timed_out', ...extra };
    this.ops.push(rec);
    const deadline = rec.startedAt + this.#o.opDeadlineMs;
    for (let attempt = 0; ; attempt++) {
      const r = await this.#cluster.sched(kind, payload, this.#o.requestTimeoutMs);
      const at = Date.now();
      if (r.ok) {
        const v = r.value as { nodeId: string; allocation?: { id: string }; id?: string };
        const allocationId = v.allocation?.id ?? v.id;
        rec.replies.push({ at, ok: true, nodeId: v.nodeId, ...(allocationId === undefined ? {} : { allocationId }) });
        Object.assign(rec, { outcome: 'acked', nodeId: v.nodeId, ...(allocationId === undefined ? {} : { allocationId }) });
        break;
      }
      rec.replies.push({ at, ok: false, code: r.error.code, message: r.error.message.slice(0, 200) });
      if (!RETRYABLE.has(r.error.code)) {
        Object.assign(rec, { outcome: 'refused', code: r.error.code });
        break;
      }
      if (at > deadline) {
        rec.code = r.error.code;
        break;
      }
      await sleep(Math.min(1_000, 100 * 2 ** Math.min(attempt, 4)));
    }
    rec.endedAt = Date.now();
    this.#lastAnswerAt = Math.max(this.#lastAnswerAt, rec.endedAt);
    return rec;
  }

  /** Attempted / acknowledged / refused by reason / timed out, per kind. */
  summary(): Record<string, string | number> {
    const s: Record<string, string | number> = {};
    for (const kind of ['place', 'activate', 'release'] as const) {
      const ops = this.ops.filter((o) => o.kind === kind);
      const refused: Record<string, number> = {};
      for (const o of ops) if (o.outcome === 'refused') refused[o.code ?? '?'] = (refused[o.code ?? '?'] ?? 0) + 1;
      s[`${kind} attempted`] = ops.length;
      const acked = ops.filter((o) => o.outcome === 'acked').length;
      s[`${kind} acknowledged`] = `${acked} (${ops.length === 0 ? '-' : `${((100 * acked) / ops.length).toFixed(1)}%`})`;
      if (kind === 'place')
        s['place: reservations acknowledged'] = ops.filter((o) => o.outcome === 'acked' && o.reservationTtlMs !== undefined).length;
      s[`${kind} refused`] =
        Object.entries(refused)
          .map(([c, n]) => `${c}: ${n}`)
          .join(', ') || '0';
      s[`${kind} timed out`] = ops.filter((o) => o.outcome === 'timed_out').length;
      s[`${kind} retries`] = ops.reduce((n, o) => n + o.replies.length - 1, 0);
    }
    return s;
  }
}
