/**
 * Scheduler clients: concurrent workers that issue place and release requests with seeded, fixed request ids and
 * retry the same id on timeout/unavailable, as a real scheduler does. Every reply is recorded.
 */
import type { PlaceRequestInput } from '@allot/core';
import type { ChaosCluster } from './topology.ts';
// The placement package's seeded generator (mulberry32): a scenario's requests are the same on every run.
import { seededRandom } from '../../packages/placement/src/random.ts';

export type ReplyRecord = { at: number; ok: boolean; code?: string; nodeId?: string; allocationId?: string };
export type OpRecord = {
  kind: 'place' | 'release';
  requestId: string;
  /** For a release: the placement's request id. */
  placementRequestId?: string;
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
};

const RETRYABLE = new Set(['timeout', 'unavailable']);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Workload {
  readonly ops: OpRecord[] = [];
  readonly #cluster: ChaosCluster;
  readonly #o: WorkloadOptions;
  #lastAnswerAt = 0;

  constructor(cluster: ChaosCluster, options: WorkloadOptions) {
    this.#cluster = cluster;
    this.#o = options;
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
    const held: string[] = [];
    for (let i = 0; Date.now() < until; i++) {
      if (held.length > 0 && random() < this.#o.releaseProbability) {
        const placement = held.splice(Math.floor(random() * held.length), 1)[0] as string;
        await this.#op('release', `${placement}-rel`, { requestId: `${placement}-rel`, placementRequestId: placement, tenantId: `t${w % 3}` }, placement);
      } else {
        const requestId = `${this.#o.prefix}-w${w}-${i}`;
        const exclusive = random() < 0.1;
        const req: PlaceRequestInput = {
          request: {
            requestId,
            tenantId: `t${w % 3}`,
            resources: { memoryMiB: [256, 512, 1024, 2048][Math.floor(random() * 4)] as number, vcpus: exclusive ? 1 + Math.floor(random() * 2) : 1 + Math.floor(random() * 3) },
            cpu: { exclusive, numa: 'any' },
          },
          placement: { strategy: random() < 0.5 ? 'spread' : 'binpack', constraints: [] },
        };
        const rec = await this.#op('place', requestId, req);
        if (rec.outcome === 'acked') held.push(requestId);
      }
      await sleep(5 + Math.floor(random() * 20));
    }
  }

  async #op(kind: 'place' | 'release', requestId: string, payload: unknown, placementRequestId?: string): Promise<OpRecord> {
    const rec: OpRecord = { kind, requestId, startedAt: Date.now(), endedAt: 0, replies: [], outcome: 'timed_out', ...(placementRequestId === undefined ? {} : { placementRequestId }) };
    this.ops.push(rec);
    const deadline = rec.startedAt + this.#o.opDeadlineMs;
    for (let attempt = 0; ; attempt++) {
      const r = kind === 'place' ? await this.#cluster.sched('place', payload, this.#o.requestTimeoutMs) : await this.#cluster.sched('release', payload, this.#o.requestTimeoutMs);
      const at = Date.now();
      if (r.ok) {
        const v = r.value as { nodeId: string; allocation?: { id: string }; id?: string };
        const allocationId = v.allocation?.id ?? v.id;
        rec.replies.push({ at, ok: true, nodeId: v.nodeId, ...(allocationId === undefined ? {} : { allocationId }) });
        Object.assign(rec, { outcome: 'acked', nodeId: v.nodeId, ...(allocationId === undefined ? {} : { allocationId }) });
        break;
      }
      rec.replies.push({ at, ok: false, code: r.error.code });
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
    for (const kind of ['place', 'release'] as const) {
      const ops = this.ops.filter((o) => o.kind === kind);
      const refused: Record<string, number> = {};
      for (const o of ops) if (o.outcome === 'refused') refused[o.code ?? '?'] = (refused[o.code ?? '?'] ?? 0) + 1;
      s[`${kind} attempted`] = ops.length;
      s[`${kind} acknowledged`] = ops.filter((o) => o.outcome === 'acked').length;
      s[`${kind} refused`] = Object.entries(refused).map(([c, n]) => `${c}: ${n}`).join(', ') || '0';
      s[`${kind} timed out`] = ops.filter((o) => o.outcome === 'timed_out').length;
      s[`${kind} retries`] = ops.reduce((n, o) => n + o.replies.length - 1, 0);
    }
    return s;
  }
}
