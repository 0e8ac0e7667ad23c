import { err, ok, type Result } from '@allot/core';
import { EVENTS_STREAM, EVENTS_SUBJECTS, STREAM_LIMITS, USAGE_STREAM, USAGE_SUBJECTS } from '@allot/protocol';
import {
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { nanos } from '@nats-io/transport-node';

/** The fields of a stream config allot manages; anything else on an existing stream is left as it is. */
export type ManagedStreamConfig = Pick<
  StreamConfig,
  'name' | 'subjects' | 'max_msgs_per_subject' | 'max_msgs' | 'max_age' | 'max_bytes' | 'discard' | 'storage' | 'num_replicas' | 'retention'
>;

/** The usage and events streams, from the limits in core. Only 2.9.10-compatible fields. */
export function allotStreamConfigs(replicas: number): ManagedStreamConfig[] {
  const base = { retention: RetentionPolicy.Limits, storage: StorageType.File, discard: DiscardPolicy.Old, num_replicas: replicas };
  return [
    {
      ...base,
      name: USAGE_STREAM,
      subjects: [USAGE_SUBJECTS],
      max_msgs_per_subject: STREAM_LIMITS.usage.maxMsgsPerSubject,
      max_msgs: -1,
      max_age: nanos(STREAM_LIMITS.usage.maxAgeMs),
      max_bytes: STREAM_LIMITS.usage.maxBytes,
    },
    {
      ...base,
      name: EVENTS_STREAM,
      subjects: [EVENTS_SUBJECTS],
      max_msgs_per_subject: -1,
      max_msgs: STREAM_LIMITS.events.maxMsgs,
      max_age: nanos(STREAM_LIMITS.events.maxAgeMs),
      max_bytes: STREAM_LIMITS.events.maxBytes,
    },
  ];
}

/** Names of the managed fields whose value differs on the server. */
export function configDrift(want: ManagedStreamConfig, have: StreamConfig): string[] {
  const drift: string[] = [];
  for (const key of Object.keys(want) as (keyof ManagedStreamConfig)[]) {
    const a = want[key];
    const b = have[key];
    const same = Array.isArray(a) && Array.isArray(b) ? a.length === b.length && a.every((x, i) => x === b[i]) : a === b;
    if (!same) drift.push(key);
  }
  return drift;
}

function isNotFound(e: unknown): boolean {
  return e instanceof Error && /not found/i.test(e.message);
}

/**
 * Creates the stream, or brings an existing one to the managed config. Safe to run from many processes at once: a
 * create that loses the race ("already in use") is followed by a read and, when the config differs, an update.
 */
export async function ensureStream(jsm: JetStreamManager, want: ManagedStreamConfig): Promise<Result<StreamInfo>> {
  for (let attempt = 0; attempt < 3; attempt++) {
    let info: StreamInfo | undefined;
    try {
      info = await jsm.streams.info(want.name);
    } catch (e) {
      if (!isNotFound(e)) return err('unavailable', `stream ${want.name}: ${(e as Error).message}`, { stream: want.name });
    }
    try {
      if (info === undefined) return ok(await jsm.streams.add(want));
      const drift = configDrift(want, info.config);
      if (drift.length === 0) return ok(info);
      return ok(await jsm.streams.update(want.name, { ...info.config, ...want }));
    } catch (e) {
      // Another process created or changed it between our read and our write: read again.
      if (/already in use|exists/i.test((e as Error).message) && attempt < 2) continue;
      return err('unavailable', `stream ${want.name}: ${(e as Error).message}`, { stream: want.name });
    }
  }
  return err('unavailable', `stream ${want.name}: still changing under us after 3 attempts`, { stream: want.name });
}

/** Creates or updates ALLOT_USAGE and ALLOT_EVENTS. replicas: 1 on one server, 3 on a 3-node cluster. */
export async function ensureStreams(jsm: JetStreamManager, opts: { replicas: number }): Promise<Result<StreamInfo[]>> {
  const infos: StreamInfo[] = [];
  for (const config of allotStreamConfigs(opts.replicas)) {
    const info = await ensureStream(jsm, config);
    if (!info.ok) return info;
    infos.push(info.value);
  }
  return ok(infos);
}

export type EnsureKvOptions = {
  /** Values kept per key (1..64). */
  history: number;
  /** Entries older than this are removed (max_age); none when absent. */
  ttlMs?: number;
  replicas: number;
  /** Per-message TTLs (`Nats-TTL`, nats-server 2.11+). */
  allowMsgTtl?: boolean;
  /** Atomic batch publish across keys (nats-server 2.12+). */
  allowAtomic?: boolean;
  /**
   * When a value expires (its TTL or max_age), the server leaves a delete marker kept this long, so watchers see the
   * key go (needs allowMsgTtl). Absent: expired values vanish without a trace.
   */
  expiryMarkerTtlMs?: number;
  /**
   * Refuse `Nats-Rollup` headers: whoever may write one key could otherwise erase every key of the bucket with
   * `Nats-Rollup: all` (an agent, all the node leases). Absent: the bucket's setting is left as it is.
   */
  denyRollup?: boolean;
};

/** The stream settings ensureKv manages for a bucket, in the units of the stream config. */
function kvStreamSettings(opts: EnsureKvOptions): Partial<StreamConfig> {
  return {
    max_msgs_per_subject: opts.history,
    max_age: nanos(opts.ttlMs ?? 0),
    num_replicas: opts.replicas,
    allow_msg_ttl: opts.allowMsgTtl === true,
    allow_atomic: opts.allowAtomic === true,
    ...(opts.expiryMarkerTtlMs === undefined ? {} : { subject_delete_marker_ttl: nanos(opts.expiryMarkerTtlMs) }),
    ...(opts.denyRollup === true ? { allow_rollup_hdrs: false } : {}),
  } as Partial<StreamConfig>;
}

/**
 * Opens a KV bucket, creating it when absent and bringing history, TTL, replicas, per-message TTLs and atomic batches to
 * what is asked when it exists with other settings. Concurrent callers all succeed. A server that ignores a setting (too
 * old for it) is `internal` naming the setting: waiting will not help.
 */
export async function ensureKv(js: JetStreamClient, bucket: string, opts: EnsureKvOptions): Promise<Result<KV>> {
  const kvm = new Kvm(js);
  const kvOptions = { history: opts.history, replicas: opts.replicas, ...(opts.ttlMs === undefined ? {} : { ttl: opts.ttlMs }) };
  let kv: KV;
  try {
    kv = await kvm.create(bucket, kvOptions);
  } catch (e) {
    // Lost a creation race with different defaults: the bucket exists now, open it and converge below.
    try {
      kv = await kvm.open(bucket);
    } catch {
      return err('unavailable', `KV ${bucket}: ${(e as Error).message}`, { bucket });
    }
  }
  const streamName = `KV_${bucket}`;
  const want = kvStreamSettings(opts);
  try {
    const jsm = await js.jetstreamManager();
    const info = await jsm.streams.info(streamName);
    const have = info.config as unknown as Record<string, unknown>;
    const differs = (Object.keys(want) as (keyof typeof want)[]).filter((k) => (have[k] ?? false) !== (want[k] ?? false));
    if (differs.length > 0) {
      const updated = (await jsm.streams.update(streamName, { ...info.config, ...want })).config as unknown as Record<string, unknown>;
      const ignored = differs.filter((k) => (updated[k] ?? false) !== (want[k] ?? false));
      if (ignored.length > 0)
        return err('internal', `KV ${bucket}: the server did not take ${ignored.join(', ')} (too old a nats-server?)`, {
          bucket,
          settings: ignored,
        });
    }
  } catch (e) {
    return err('unavailable', `KV ${bucket}: ${(e as Error).message}`, { bucket });
  }
  return ok(kv);
}

/** True when `version` (as in the server's INFO, "2.12.1" or "2.14.0-beta.2") is at least `min` ("2.12.0"). */
export function versionAtLeast(version: string, min: string): boolean {
  const parse = (v: string) => (v.split('-')[0] ?? '').split('.').map((n) => Number.parseInt(n, 10) || 0);
  const a = parse(version);
  const b = parse(min);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}
