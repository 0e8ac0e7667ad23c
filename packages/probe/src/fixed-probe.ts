import type { CpuSample, HostProbe, HostSample, HostTopology, MemorySample } from '@allot/core';
import { layoutCores, type CoreLayout } from './host-size.ts';

/** A host sample without its time: FixedProbe stamps it when sampled. */
export interface FixedFigures {
  readonly memory: MemorySample;
  readonly cpu: CpuSample;
}

/**
 * A probe whose every figure the test sets. sample() returns the current figures stamped with the injected clock;
 * latest() returns the last sample taken (undefined before the first), so a test can make a probe go stale by
 * advancing its clock without sampling.
 */
export class FixedProbe implements HostProbe {
  #topology: HostTopology;
  #figures: FixedFigures;
  #latest: HostSample | undefined;
  #now: () => number;
  /** How many times sample() was called. */
  samples = 0;

  constructor(topology: HostTopology, figures: FixedFigures, options: { now?: () => number } = {}) {
    this.#topology = topology;
    this.#figures = figures;
    this.#now = options.now ?? Date.now;
  }

  /** An idle host of this layout and memory size: 0 used, every core 0 per mille. Throws on a bad layout (a test bug). */
  static idle(layout: CoreLayout & { memoryMiB: number }, options: { now?: () => number } = {}): FixedProbe {
    const cores = layoutCores(layout);
    return new FixedProbe(
      { cores, source: 'config' },
      {
        memory: { totalMiB: layout.memoryMiB, usedMiB: 0, availableMiB: layout.memoryMiB },
        cpu: { perCorePermille: new Map(cores.map((c) => [c.id, 0])), totalPermille: 0 },
      },
      options,
    );
  }

  setTopology(topology: HostTopology): void {
    this.#topology = topology;
  }

  /** Replaces the memory and/or CPU figures the next sample returns. */
  set(figures: Partial<FixedFigures>): void {
    this.#figures = { ...this.#figures, ...figures };
  }

  topology(): Promise<HostTopology> {
    return Promise.resolve(this.#topology);
  }

  latest(): HostSample | undefined {
    return this.#latest;
  }

  sample(): Promise<HostSample> {
    this.samples += 1;
    this.#latest = { at: this.#now(), ...this.#figures };
    return Promise.resolve(this.#latest);
  }
}
