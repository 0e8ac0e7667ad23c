import { runAgentLayer } from './agent-layer.ts';
import { runClusterLayer } from './cluster-layer.ts';
import { Scheduler, SIM_EPOCH_MS } from './scheduler.ts';

export type Layer = 'agents' | 'cluster';

export interface SeedOptions {
  readonly layer: Layer;
  readonly durationMs?: number;
  /**
   * Cluster layer: clients also move their VMs and the operator evacuates a node (docs/simulation.md, "Moves"). Off by
   * default until a confirmed move keeps its source counted until that copy is proven released (an open finding).
   */
  readonly moves?: boolean;
  /** Cluster layer: clients also place with preemption and resize VMs in place (docs/simulation.md, "Preemption and resize"). */
  readonly lifecycle?: boolean;
  /** Cluster layer: clients also place gangs all or nothing (docs/simulation.md, "Batches"). */
  readonly batches?: boolean;
  /** Trace lines kept (the last ones); a replay keeps them all. */
  readonly traceLimit?: number;
}

export interface SeedOutcome {
  readonly seed: number;
  readonly failure: string | undefined;
  readonly trace: string[];
  readonly steps: number;
  readonly simulatedMs: number;
}

/** Runs one seed to the end (or to its first broken invariant). Same seed, same options: same run, event for event. */
export async function runSeed(seed: number, options: SeedOptions): Promise<SeedOutcome> {
  const sched = new Scheduler(seed, options.traceLimit === undefined ? {} : { traceLimit: options.traceLimit });
  try {
    if (options.layer === 'agents') await runAgentLayer(sched, { durationMs: options.durationMs ?? 30_000, agents: 3, clients: 4 });
    else
      await runClusterLayer(sched, {
        durationMs: options.durationMs ?? 30_000,
        agents: 3,
        coordinators: 2,
        clients: 4,
        moves: options.moves === true,
        lifecycle: options.lifecycle === true,
        batches: options.batches === true,
        seed,
      });
  } catch (thrown) {
    sched.fail(`the run threw: ${(thrown as Error).stack ?? String(thrown)}`);
  }
  return { seed, failure: sched.failure, trace: sched.traceLines(), steps: sched.steps, simulatedMs: sched.now - SIM_EPOCH_MS };
}

export function replayCommand(seed: number, options: SeedOptions): string {
  return `pnpm sim --seed ${seed} --layer ${options.layer}${options.durationMs === undefined ? '' : ` --duration ${options.durationMs}`}${options.moves === true ? ' --moves' : ''}${options.lifecycle === true ? ' --lifecycle' : ''}${options.batches === true ? ' --batches' : ''}`;
}
