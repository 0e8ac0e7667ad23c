import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ReconcileConfigSchema } from './config.ts';
import { IntentStore } from './intents/intent-store.ts';
import { Reconciler } from './reconciler.ts';
import type { BucketChange } from './store/bucket.ts';
import { MemoryBucket } from './store/memory-bucket.ts';
import { inProcessCluster } from './testing/fake-agents.ts';

/** A bucket whose first watch fails, as a KV watch created while NATS is unreachable does. */
class FirstWatchFails extends MemoryBucket {
  watches = 0;
  override watch(onChange: (change: BucketChange) => void): Promise<{ readonly caughtUp: Promise<void>; stop(): void }> {
    this.watches += 1;
    if (this.watches === 1) return Promise.reject(new Error('connection disconnected'));
    return super.watch(onChange);
  }
}

describe('reconciler: a watch that failed while NATS was unreachable', () => {
  it('is created again by the next round, and stop() still resolves', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 8192, cores: 8 } });
    const bucket = new FirstWatchFails({ now: cluster.clock.wall });
    const store = new IntentStore(bucket, { coordinatorId: 'c1', clock: cluster.clock, finishedTtlMs: 60_000 });
    const reconciler = new Reconciler({
      store,
      agents: cluster.agents.caller(),
      config: ReconcileConfigSchema.parse({ pendingOlderThanMs: 1_000 }),
      logger: pino({ level: 'silent' }),
      clock: cluster.clock,
      nodeGone: () => false,
    });
    await reconciler.reconcileOnce(); // the watch fails: this round cannot follow the intents
    await reconciler.reconcileOnce();
    expect(bucket.watches).toBe(2);
    await expect(reconciler.stop()).resolves.toBeUndefined();
  });

  it('does not make stop() throw when it never came back', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 8192, cores: 8 } });
    const bucket = new FirstWatchFails({ now: cluster.clock.wall });
    const store = new IntentStore(bucket, { coordinatorId: 'c1', clock: cluster.clock, finishedTtlMs: 60_000 });
    const reconciler = new Reconciler({
      store,
      agents: cluster.agents.caller(),
      config: ReconcileConfigSchema.parse({ pendingOlderThanMs: 1_000 }),
      logger: pino({ level: 'silent' }),
      clock: cluster.clock,
      nodeGone: () => false,
    });
    await reconciler.reconcileOnce();
    await expect(reconciler.stop()).resolves.toBeUndefined();
  });
});
