import type { CpuSample, HostProbe, HostSample, HostTopology, MemorySample, NodeMemory } from '@allot/core';

/**
 * A HostProbe tests control: set the topology and the samples it reports. It reports nothing until told to
 * (`setMemory`, `setCpu` or `setSample`), exactly like a real probe before its first sample. Never random.
 */
export class FakeProbe implements HostProbe {
  #topology: HostTopology;
  #sample: HostSample | undefined;
  #now: () => number;

  /** `nodeMemory`: the NUMA nodes' memory and hugepage pools it reports (none: it has no nodeMemory to read). */
  constructor(options: { topology?: HostTopology; totalMemoryMiB?: number; now?: () => number; nodeMemory?: readonly NodeMemory[] } = {}) {
    if (options.nodeMemory !== undefined) {
      const nodes = options.nodeMemory;
      this.nodeMemory = () => Promise.resolve(nodes);
    }
    this.#topology = options.topology ?? { cores: [0, 1, 2, 3].map((id) => ({ id, core: id, numa: 0, socket: 0 })), source: 'config' };
    this.#now = options.now ?? Date.now;
    if (options.totalMemoryMiB !== undefined)
      this.setMemory({ totalMiB: options.totalMemoryMiB, usedMiB: 0, availableMiB: options.totalMemoryMiB });
  }

  /** Present only when built with `nodeMemory`, like a real probe that could read /sys. */
  nodeMemory?: () => Promise<readonly NodeMemory[]>;

  topology(): Promise<HostTopology> {
    return Promise.resolve(this.#topology);
  }

  latest(): HostSample | undefined {
    return this.#sample;
  }

  sample(): Promise<HostSample> {
    if (this.#sample === undefined) return Promise.reject(new Error('FakeProbe has no sample: call setMemory or setSample first'));
    this.#sample = { ...this.#sample, at: this.#now() };
    return Promise.resolve(this.#sample);
  }

  setSample(sample: HostSample): void {
    this.#sample = sample;
  }

  setMemory(memory: MemorySample, at = this.#now()): void {
    this.#sample = { at, memory, cpu: this.#sample?.cpu ?? { perCorePermille: new Map(), totalPermille: 0 } };
  }

  setCpu(cpu: CpuSample, at = this.#now()): void {
    const total = this.#sample?.memory.totalMiB ?? 0;
    this.#sample = { at, memory: this.#sample?.memory ?? { totalMiB: total, usedMiB: 0, availableMiB: total }, cpu };
  }

  /** Forgets the sample: the probe "has not reported yet". */
  clear(): void {
    this.#sample = undefined;
  }
}
