import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { registerCleanup } from '../harness/cleanup.ts';
import type { SimHostSpec } from './sim-host.ts';
import type { Change, WorkerCommand, WorkerReport } from './worker.ts';

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));

export interface FleetOptions {
  readonly natsUrl: string;
  /** Worker processes the hosts are spread over (round robin). */
  readonly workers: number;
  readonly heartbeatMs: number;
  /** An unchanged host reports this often (the agent's idleStatusMs); default heartbeatMs. */
  readonly idleStatusMs?: number;
  /** Changes closer together than this are coalesced into one snapshot (the agent's usagePublishMinIntervalMs). */
  readonly usagePublishMinIntervalMs?: number;
  /** Every change the churn makes, as the workers report them (batched every 100 ms). */
  readonly onChanges?: (changes: readonly Change[]) => void;
}

/** Host i of the fleet: `fleet-00042`, 64 cores, 256 GiB, in one of 3 zones and 100 racks. */
export function fleetHost(i: number, heartbeatMs: number, usagePublishMinIntervalMs: number, idleStatusMs?: number): SimHostSpec {
  return {
    ...(idleStatusMs === undefined ? {} : { idleStatusMs }),
    nodeId: `fleet-${String(i).padStart(5, '0')}`,
    cores: 64,
    memoryMiB: 262_144,
    labels: { zone: `z${i % 3}`, rack: `r${i % 100}` },
    heartbeatMs,
    usagePublishMinIntervalMs,
  };
}

interface Worker {
  readonly child: ChildProcess;
  total: number;
  stats: { published: number; events: number; requests: number; rssMiB: number };
  waiting: Array<{ total: number; resolve: () => void }>;
}

/**
 * The simulated hosts, spread over worker processes (worker.ts). grow(n) adds hosts until there are n, waiting until
 * each worker has built its share and subscribed its subjects (the first snapshots are on their way then).
 */
export class Fleet {
  readonly #options: FleetOptions;
  readonly #workers: Worker[] = [];
  #size = 0;

  private constructor(options: FleetOptions) {
    this.#options = options;
  }

  static async start(options: FleetOptions): Promise<Fleet> {
    const fleet = new Fleet(options);
    await Promise.all(Array.from({ length: options.workers }, () => fleet.#fork()));
    registerCleanup('fleet workers', () => fleet.stop());
    return fleet;
  }

  get size(): number {
    return this.#size;
  }

  get nodeIds(): string[] {
    return Array.from({ length: this.#size }, (_, i) => fleetHost(i, 0, 0).nodeId);
  }

  /** Sums of the workers' last reports: snapshots and events published, agent requests served, their RSS. */
  stats(): { published: number; events: number; requests: number; rssMiB: number } {
    const sum = { published: 0, events: 0, requests: 0, rssMiB: 0 };
    for (const w of this.#workers) for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += w.stats[k];
    return sum;
  }

  pids(): number[] {
    return this.#workers.map((w) => w.child.pid ?? 0);
  }

  /** Adds hosts until the fleet has n; resolves once every worker has built and subscribed its new ones. */
  async grow(n: number): Promise<void> {
    const byWorker = this.#workers.map(() => [] as SimHostSpec[]);
    for (let i = this.#size; i < n; i++)
      byWorker[i % this.#workers.length]?.push(
        fleetHost(i, this.#options.heartbeatMs, this.#options.usagePublishMinIntervalMs ?? 250, this.#options.idleStatusMs),
      );
    this.#size = Math.max(this.#size, n);
    await Promise.all(
      this.#workers.map((w, i) => {
        const hosts = byWorker[i] ?? [];
        if (hosts.length === 0) return Promise.resolve();
        const total = w.total + hosts.length;
        w.total = total;
        return new Promise<void>((resolve) => {
          w.waiting.push({ total, resolve });
          this.#send(w, { kind: 'add', hosts });
        });
      }),
    );
  }

  /** Changes per second over the whole fleet (0 stops the churn). */
  churn(perSecond: number): void {
    for (const w of this.#workers) this.#send(w, { kind: 'churn', perSecond: perSecond / this.#workers.length });
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.#workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.child.exitCode !== null || !w.child.connected) return resolve();
            const timer = setTimeout(() => {
              w.child.kill('SIGKILL');
              resolve();
            }, 5_000);
            w.child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            this.#send(w, { kind: 'stop' });
          }),
      ),
    );
    this.#workers.length = 0;
  }

  #send(w: Worker, command: WorkerCommand): void {
    if (w.child.connected) w.child.send(command);
  }

  #fork(): Promise<void> {
    // Each worker holds thousands of hosts: a larger young generation keeps the collector's pauses short and rare.
    const child = fork(WORKER, [], {
      env: { ...process.env, FLEET_NATS_URL: this.#options.natsUrl },
      execArgv: ['--max-semi-space-size=32'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const worker: Worker = { child, total: 0, stats: { published: 0, events: 0, requests: 0, rssMiB: 0 }, waiting: [] };
    this.#workers.push(worker);
    return new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`fleet worker exited with ${code}`)));
      child.on('message', (report: WorkerReport) => {
        if (report.kind === 'ready') resolve();
        else if (report.kind === 'added') {
          for (const waiting of worker.waiting.filter((x) => x.total <= report.total)) waiting.resolve();
          worker.waiting = worker.waiting.filter((x) => x.total > report.total);
        } else if (report.kind === 'changes') this.#options.onChanges?.(report.changes);
        else if (report.kind === 'stats') worker.stats = report;
      });
    });
  }
}
