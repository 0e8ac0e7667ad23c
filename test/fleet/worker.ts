// One worker process of the fleet: many simulated hosts (sim-host.ts) on one NATS connection. Started by fleet.ts
// with `fork`; told what to do over the IPC channel (WorkerCommand), reports back the same way (WorkerReport).
import { AsyncJetStreamPublisher, ensureKv } from '@allot/nats';
import { KV_NODES, NODE_LEASE_TTL_MS } from '@allot/protocol';
import { jetstream } from '../../apps/coordinator/src/nats-deps.ts';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { EventPublisher } from '../../apps/agent/src/events.ts';
import { SimHost, silentLogger, type SimHostSpec } from './sim-host.ts';

/** What the fleet tells a worker. */
export type WorkerCommand =
  | { kind: 'add'; hosts: SimHostSpec[] }
  /** Changes per second over this worker's hosts: allocations, releases and health changes (churn). */
  | { kind: 'churn'; perSecond: number }
  | { kind: 'stop' };

/** One change made on a host: its seq afterwards and when (epoch ms, this machine's clock) it was asked for. */
export type Change = readonly [nodeId: string, seq: number, at: number];

export type WorkerReport =
  | { kind: 'ready' }
  | { kind: 'added'; total: number }
  | { kind: 'changes'; changes: Change[] }
  | { kind: 'stats'; published: number; events: number; requests: number; rssMiB: number }
  | { kind: 'stopped' };

const CHURN_TENANT = 'churn';
/** Churn ticks per second: each does perSecond / TICKS changes. */
const TICKS = 10;

function send(report: WorkerReport): void {
  process.send?.(report);
}

async function main(): Promise<void> {
  const url = process.env['FLEET_NATS_URL'];
  if (url === undefined) throw new Error('FLEET_NATS_URL is not set');
  // noAsyncTraces: nats.js otherwise captures a stack per request, a fifth of a busy client's CPU.
  const nc: NatsConnection = await connect({
    servers: url,
    noAsyncTraces: true,
    name: `fleet-worker-${process.pid}`,
    maxReconnectAttempts: -1,
  });
  const publisher = new AsyncJetStreamPublisher(nc, { timeoutMs: 10_000 });
  const events = new EventPublisher(silentLogger, { window: 1024 });
  events.attach(new AsyncJetStreamPublisher(nc, { timeoutMs: 10_000 }));
  const hosts: SimHost[] = [];
  let published = 0;
  let requests = 0;
  let pending: Change[] = [];
  // Each host holds its node lease, renewed every 5 s as the agent does: the coordinators watch them as liveness.
  const leases = await ensureKv(jetstream(nc), KV_NODES, { history: 1, ttlMs: NODE_LEASE_TTL_MS, replicas: 1 });
  if (!leases.ok) throw new Error(leases.error.message);
  const shared = { publisher, events, leases: leases.value, onPublished: () => void (published += 1) };

  const add = async (specs: SimHostSpec[]): Promise<void> => {
    for (const spec of specs) {
      const host = new SimHost(spec, shared);
      await host.start();
      hosts.push(host);
      // One subscription per host, as each agent serves its own subjects; the verb is the rest of the subject.
      const prefix = `allot.agent.${spec.nodeId}.`;
      nc.subscribe(`${prefix}>`, {
        callback: (e, msg) => {
          if (e !== null || !msg.reply) return;
          requests += 1;
          void host.handle(msg.subject.slice(prefix.length), msg);
        },
      });
    }
    await nc.flush();
    send({ kind: 'added', total: hosts.length });
  };

  let churnTimer: ReturnType<typeof setInterval> | undefined;
  let counter = 0;
  const live = new Map<SimHost, string[]>();
  const churnOnce = async (host: SimHost): Promise<void> => {
    const at = Date.now();
    const held = live.get(host) ?? [];
    const roll = Math.random();
    if (roll < 0.1) host.setDegraded(!host.degraded);
    else if (roll < 0.55 || held.length === 0) {
      counter += 1;
      const r = await host.host.allocate({
        requestId: `churn-${process.pid}-${counter}`,
        tenantId: CHURN_TENANT,
        resources: { memoryMiB: 1_024, vcpus: 1 },
      });
      if (!r.ok) return;
      held.push(r.value.id);
      live.set(host, held);
    } else {
      const id = held.pop() as string;
      counter += 1;
      const r = await host.host.release({ requestId: `churn-rel-${process.pid}-${counter}`, allocationId: id });
      if (!r.ok) return;
    }
    if (roll >= 0.1) pending.push([host.spec.nodeId, host.seq, at]);
  };
  const churn = (perSecond: number): void => {
    if (churnTimer !== undefined) clearInterval(churnTimer);
    churnTimer = undefined;
    if (perSecond <= 0) return;
    let carry = 0;
    churnTimer = setInterval(() => {
      carry += perSecond / TICKS;
      for (; carry >= 1 && hosts.length > 0; carry -= 1) void churnOnce(hosts[Math.floor(Math.random() * hosts.length)] as SimHost);
    }, 1000 / TICKS);
  };

  const flusher = setInterval(() => {
    if (pending.length > 0) {
      send({ kind: 'changes', changes: pending });
      pending = [];
    }
  }, 100);
  const stats = setInterval(
    () =>
      send({
        kind: 'stats',
        published,
        events: events.published,
        requests,
        rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
      }),
    1_000,
  );

  process.on('message', (command: WorkerCommand) => {
    if (command.kind === 'add') void add(command.hosts);
    else if (command.kind === 'churn') churn(command.perSecond);
    else {
      churn(0);
      clearInterval(flusher);
      clearInterval(stats);
      events.stop();
      void Promise.all(hosts.map((h) => h.stop()))
        .then(() => nc.close())
        .then(() => {
          send({ kind: 'stopped' });
          process.exit(0);
        });
    }
  });
  // The fleet died: nothing keeps a worker alive without it.
  process.on('disconnect', () => process.exit(0));
  send({ kind: 'ready' });
}

main().catch((e: unknown) => {
  console.error(`fleet worker: ${(e as Error).stack ?? String(e)}`);
  process.exit(1);
});
