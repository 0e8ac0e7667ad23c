import {
  AGENT_ENDPOINTS,
  agentSubject,
  AllotEventSchema,
  decode,
  EVENT_KINDS,
  eventSubject,
  SCHED_ENDPOINTS,
  schedSubject,
  usageSubject,
} from '@allot/protocol';
import { ERROR_CODES, UsageSnapshotSchema } from '@allot/core';
import { syntheticSnapshot } from '@allot/coordinator';
import { unpack } from 'msgpackr';
import type { z } from 'zod';
import type { LocalCluster } from '../harness/index.ts';
import { baseMessage, FUZZ_TENANT, payloadOf, type Shape } from './payloads.ts';
import { Rng } from './random.ts';

/** Verbs whose valid request would change state: only requests their schema refuses are sent (checked with the same decode the servers run). */
const MUTATING = new Set([
  'allocate',
  'reserve',
  'release',
  'activate',
  'fence',
  'resize',
  'limits.update',
  'cordon',
  'uncordon',
  'place',
  'place.batch',
  'quota.set',
  'quota.import',
  'quota.recount',
  'drain',
  'move',
  'move.confirm',
  'move.abort',
  'evacuate',
]);
const SHAPES: readonly Shape[] = [
  'mutated',
  'mutated',
  'mutated',
  'mutated',
  'random_value',
  'ext_body',
  'ext_body',
  'random_bytes',
  'oversized',
  'deep',
  'empty',
  'cyclic',
];
const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

export interface FuzzOptions {
  readonly count: number;
  readonly seed: number;
  /** Stop sending after this long even if count is not reached. */
  readonly timeLimitMs: number;
  /** Requests in flight at once. */
  readonly concurrency?: number;
  readonly requestTimeoutMs?: number;
  /** Share of messages published onto the usage and events stream subjects. */
  readonly streamShare?: number;
}

export interface Finding {
  readonly kind: 'no_reply' | 'untyped_reply' | 'bad_ok_reply' | 'ok_for_invalid_request';
  readonly subject: string;
  readonly shape: Shape;
  readonly detail: string;
}

export interface FuzzReport {
  readonly sent: number;
  readonly requests: number;
  readonly published: number;
  /** Generated messages not sent because they were valid for a mutating verb (or a legitimate stream publication). */
  readonly skippedValid: number;
  readonly replies: { ok: number; errors: Record<string, number> };
  readonly findings: Finding[];
  readonly findingCounts: Record<string, number>;
  readonly elapsedMs: number;
  readonly messagesPerSecond: number;
}

interface Target {
  readonly kind: 'agent' | 'sched';
  readonly verb: string;
  readonly subject: string;
  readonly nodeId: string;
  readonly request: z.ZodType;
  readonly reply: z.ZodType;
}

/** Every agent and coordinator subject, from the endpoint tables (whatever subjects exist when the fuzzer runs). */
export function targets(nodeIds: readonly string[]): Target[] {
  const out: Target[] = [];
  for (const nodeId of nodeIds) {
    for (const [verb, spec] of Object.entries(AGENT_ENDPOINTS))
      out.push({ kind: 'agent', verb, subject: agentSubject(nodeId, verb as never), nodeId, request: spec.request, reply: spec.reply });
  }
  // Tenant verbs carry the tenant in the subject once subjects.ts has tenant subjects; the second argument is ignored otherwise.
  const subjectOf = schedSubject as unknown as (verb: string, tenantId?: string) => string | undefined;
  for (const [verb, spec] of Object.entries(SCHED_ENDPOINTS)) {
    const subject = subjectOf(verb, FUZZ_TENANT) ?? subjectOf(verb);
    if (subject !== undefined)
      out.push({ kind: 'sched', verb, subject, nodeId: nodeIds[0] as string, request: spec.request, reply: spec.reply });
  }
  return out;
}

/** Sends the fuzz traffic; the caller compares state and checks the processes around it. */
export async function fuzz(cluster: LocalCluster, options: FuzzOptions): Promise<FuzzReport> {
  const rng = new Rng(options.seed);
  const nodeIds = [...cluster.agents.keys()].sort();
  const all = targets(nodeIds);
  const concurrency = options.concurrency ?? 48;
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const streamShare = options.streamShare ?? 0.15;
  const findings: Finding[] = [];
  const findingCounts: Record<string, number> = {};
  const replies = { ok: 0, errors: {} as Record<string, number> };
  let sent = 0;
  let requests = 0;
  let published = 0;
  let skippedValid = 0;
  const find = (f: Finding) => {
    findingCounts[f.kind] = (findingCounts[f.kind] ?? 0) + 1;
    if (findings.length < 50) findings.push(f);
  };

  const check = (t: Target, shape: Shape, data: Uint8Array, mutating: boolean) => {
    let envelope: unknown;
    try {
      envelope = unpack(data);
    } catch (e) {
      return find({ kind: 'untyped_reply', subject: t.subject, shape, detail: `reply is not msgpack: ${(e as Error).message}` });
    }
    const e = envelope as { ok?: unknown; value?: unknown; error?: { code?: unknown; message?: unknown } };
    if (e?.ok === true) {
      replies.ok += 1;
      if (mutating)
        return find({ kind: 'ok_for_invalid_request', subject: t.subject, shape, detail: JSON.stringify(e.value).slice(0, 300) });
      const parsed = t.reply.safeParse(e.value);
      if (!parsed.success) find({ kind: 'bad_ok_reply', subject: t.subject, shape, detail: parsed.error.message.slice(0, 300) });
      return;
    }
    const code = e?.error?.code;
    if (e?.ok !== false || typeof code !== 'string' || !KNOWN_CODES.has(code) || typeof e.error?.message !== 'string') {
      return find({
        kind: 'untyped_reply',
        subject: t.subject,
        shape,
        detail: JSON.stringify(envelope, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)).slice(0, 300),
      });
    }
    replies.errors[code] = (replies.errors[code] ?? 0) + 1;
  };

  const sendRequest = async (n: number): Promise<void> => {
    const t = rng.pick(all);
    const shape = rng.pick(SHAPES);
    const data = payloadOf(rng, shape, baseMessage(t.kind, t.verb, n, t.nodeId));
    const mutating = MUTATING.has(t.verb);
    // A valid request of a mutating verb would change state for real: not sent. The servers decode exactly this way.
    if (mutating && decode(t.request, data).ok) {
      skippedValid += 1;
      return;
    }
    sent += 1;
    requests += 1;
    try {
      const reply = await cluster.nc.request(t.subject, data, { timeout: timeoutMs });
      check(t, shape, reply.data, mutating);
    } catch (e) {
      find({ kind: 'no_reply', subject: t.subject, shape, detail: (e as Error).message });
    }
  };

  const publishToStream = (n: number): void => {
    const node = rng.pick(nodeIds);
    const shape = rng.pick(SHAPES);
    let subject: string;
    let data: Uint8Array;
    if (rng.chance(0.5)) {
      // The phantom-node attack among them: a valid snapshot naming another node on a real node's subject.
      subject = usageSubject(rng.chance(0.8) ? node : 'fuzz-node');
      const body = syntheticSnapshot({
        nodeId: rng.pick(['fuzz-phantom', node === nodeIds[0] ? (nodeIds[1] ?? 'x') : (nodeIds[0] as string)]),
        seq: 1_000_000 + n,
      }) as unknown as Record<string, unknown>;
      data = payloadOf(rng, shape, body);
      const s = decode(UsageSnapshotSchema, data, Number.POSITIVE_INFINITY);
      if (s.ok && subject === usageSubject(s.value.nodeId)) return void (skippedValid += 1);
    } else {
      const kind = rng.pick([...EVENT_KINDS, 'fuzz-kind']);
      subject = eventSubject(rng.pick([node, 'cluster', 'fuzz-node']), kind);
      const body: Record<string, unknown> = {
        kind: rng.pick(['released', 'expired', 'preempted', 'refused']),
        nodeId: rng.pick([...nodeIds, 'fuzz-node']),
        at: Date.now(),
        requestId: `fuzz-${n}`,
        error: { code: 'internal', message: 'm', details: { n } },
      };
      data = payloadOf(rng, shape, body);
      const e = decode(AllotEventSchema, data, Number.POSITIVE_INFINITY);
      if (e.ok && subject.startsWith(`${eventSubject(e.value.nodeId, e.value.kind)}`)) return void (skippedValid += 1);
      if (e.ok && subject.startsWith(eventSubject('cluster', ''))) return void (skippedValid += 1);
    }
    if (data.byteLength > 1_000_000) return void (skippedValid += 1);
    cluster.nc.publish(subject, data);
    sent += 1;
    published += 1;
  };

  const started = performance.now();
  const deadline = started + options.timeLimitMs;
  let next = 0;
  const worker = async () => {
    while (next < options.count && performance.now() < deadline) {
      const n = next++;
      if (rng.chance(streamShare)) {
        publishToStream(n);
        // Let the connection breathe: published messages are not flow-controlled like requests.
        if (n % 64 === 0) await cluster.nc.flush();
      } else await sendRequest(n);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  await cluster.nc.flush();
  const elapsedMs = performance.now() - started;
  return {
    sent,
    requests,
    published,
    skippedValid,
    replies,
    findings,
    findingCounts,
    elapsedMs,
    messagesPerSecond: Math.round((sent / elapsedMs) * 1000),
  };
}
