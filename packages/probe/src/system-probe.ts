import { readFile } from 'node:fs/promises';
import { cpus as osCpus, freemem, totalmem } from 'node:os';
import { join } from 'node:path';
import si from 'systeminformation';
import type { CpuSample, HostProbe, HostSample, HostTopology, LogicalCore, MemorySample } from '@allot/core';
import { layoutCores, validateLayout, type CoreLayout } from './host-size.ts';
import { WarnOnce, type ProbeLogger } from './logger.ts';
import { memorySampleFromBytes, parseMeminfo } from './proc-meminfo.ts';
import { busyPermille, parseProcStat, type CpuCounters, type ProcStat } from './proc-stat.ts';
import { readSysTopology } from './sys-topology.ts';

/** Figures to use where the host cannot be read (a container, another OS, a missing /sys file). */
export interface ProbeFallback {
  /** Logical cores. */
  readonly cores?: number;
  readonly memoryMiB?: number;
  readonly threadsPerCore?: number;
  readonly numaNodes?: number;
  readonly sockets?: number;
}

export interface SystemProbeOptions {
  readonly fallback?: ProbeFallback;
  /** Told once, at warn level, about every figure that could not be read and what was used instead. */
  readonly logger?: ProbeLogger;
  /** Root of the /sys tree (default `/sys`); tests point it at a fixture. */
  readonly sysRoot?: string;
  /** Root of the /proc tree (default `/proc`). */
  readonly procRoot?: string;
  /** Defaults to process.platform; the /sys and /proc readers are used on linux only. */
  readonly platform?: string;
  readonly now?: () => number;
}

/**
 * The real host probe. Topology from Linux /sys (SMT siblings, NUMA nodes, sockets), read once. Samples from
 * /proc/stat and /proc/meminfo read directly, keeping the previous counters for per-core deltas: no child process,
 * one small file read each. systeminformation is used only where Linux files are missing, for the figures it has.
 */
export class SystemProbe implements HostProbe {
  readonly #fallback: ProbeFallback;
  readonly #warn: WarnOnce;
  readonly #sysRoot: string;
  readonly #procRoot: string;
  readonly #linux: boolean;
  readonly #now: () => number;
  #topology: Promise<HostTopology> | undefined;
  #latest: HostSample | undefined;
  #inFlight: Promise<HostSample> | undefined;
  #previous: ProcStat | undefined;

  constructor(options: SystemProbeOptions = {}) {
    this.#fallback = options.fallback ?? {};
    this.#warn = new WarnOnce(options.logger);
    this.#sysRoot = options.sysRoot ?? '/sys';
    this.#procRoot = options.procRoot ?? '/proc';
    this.#linux = (options.platform ?? process.platform) === 'linux';
    this.#now = options.now ?? Date.now;
  }

  topology(): Promise<HostTopology> {
    this.#topology ??= this.#readTopology();
    return this.#topology;
  }

  latest(): HostSample | undefined {
    return this.#latest;
  }

  /** Concurrent callers share one reading: two interleaved readings would corrupt the per-core deltas. */
  sample(): Promise<HostSample> {
    this.#inFlight ??= this.#takeSample().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #takeSample(): Promise<HostSample> {
    const [memory, cpu] = await Promise.all([this.#sampleMemory(), this.#sampleCpu()]);
    const sample: HostSample = { at: this.#now(), memory, cpu };
    this.#latest = sample;
    return sample;
  }

  async #sampleMemory(): Promise<MemorySample> {
    if (this.#linux) {
      const path = join(this.#procRoot, 'meminfo');
      const text = await readFile(path, 'utf8').catch(() => undefined);
      const parsed = text === undefined ? undefined : parseMeminfo(text);
      if (parsed !== undefined && parsed.totalMiB > 0) return parsed;
      this.#warn.warn('meminfo', { unreadable: path, using: 'os.totalmem() and os.freemem()' }, 'probe: cannot read MemTotal/MemAvailable; memory used is approximated from free memory');
    }
    // Off Linux, Node's own figures (no child process; systeminformation would spawn vm_stat on macOS each sample).
    const total = totalmem();
    if (total > 0) return memorySampleFromBytes(total, freemem());
    const configured = this.#fallback.memoryMiB;
    this.#warn.warn('memory-total', { unreadable: 'os.totalmem()', using: { memoryMiB: configured ?? 0 } }, 'probe: host memory cannot be read; using the configured fallback');
    return { totalMiB: configured ?? 0, usedMiB: 0, availableMiB: configured ?? 0 };
  }

  async #sampleCpu(): Promise<CpuSample> {
    const current = (this.#linux ? await this.#readProcStat() : undefined) ?? countersFromOs();
    const previous = this.#previous;
    this.#previous = current;
    // The first sample has no previous counters, so it reports the average since boot.
    const perCorePermille = new Map<number, number>();
    for (const [id, counters] of current.perCore) perCorePermille.set(id, busyPermille(previous?.perCore.get(id), counters));
    return { perCorePermille, totalPermille: busyPermille(previous?.all, current.all) };
  }

  async #readProcStat(): Promise<ProcStat | undefined> {
    const path = join(this.#procRoot, 'stat');
    const text = await readFile(path, 'utf8').catch(() => undefined);
    const parsed = text === undefined ? undefined : parseProcStat(text);
    if (parsed === undefined) this.#warn.warn('proc-stat', { unreadable: path, using: 'os.cpus() times' }, 'probe: cannot read CPU counters; using the figures Node reports');
    return parsed;
  }

  async #readTopology(): Promise<HostTopology> {
    const reading = this.#linux ? await readSysTopology(this.#sysRoot) : { cores: undefined, numaKnown: false, unreadable: [`/sys (platform ${process.platform})`] };
    if (reading.cores !== undefined && reading.numaKnown) return { cores: reading.cores, source: 'probe' };

    if (reading.cores !== undefined) {
      const numaNodes = this.#fallback.numaNodes ?? 1;
      const cores = assignNuma(reading.cores, numaNodes);
      this.#warn.warn('topology', { unreadable: reading.unreadable, using: { numaNodes } }, 'probe: NUMA nodes cannot be read from /sys; using the configured number of NUMA nodes');
      return { cores, source: 'config' };
    }

    const layout = await this.#fallbackLayout();
    this.#warn.warn('topology', { unreadable: reading.unreadable, using: layout }, 'probe: CPU topology cannot be read from /sys; using configured figures or what systeminformation reports');
    return { cores: layoutCores(layout), source: 'config' };
  }

  /** Configured figures first, then systeminformation's, then one socket, one node, no SMT. */
  async #fallbackLayout(): Promise<CoreLayout> {
    const info = await si.cpu().catch(() => undefined);
    const logical = this.#fallback.cores ?? positive(info?.cores) ?? positive(osCpus().length) ?? 1;
    const physical = positive(info?.physicalCores);
    const smt = physical !== undefined && logical % physical === 0 ? logical / physical : undefined;
    const wanted: CoreLayout = {
      cores: logical,
      threadsPerCore: this.#fallback.threadsPerCore ?? smt ?? 1,
      sockets: this.#fallback.sockets ?? positive(info?.processors) ?? 1,
      numaNodes: this.#fallback.numaNodes ?? 1,
    };
    if (validateLayout(wanted).ok) return wanted;
    // An inconsistent mix of figures (say 6 cores and 4 threads per core): keep the core count, drop the rest.
    this.#warn.warn('layout', { rejected: wanted }, 'probe: fallback figures are inconsistent; using one socket, one NUMA node, no SMT');
    return { cores: logical, threadsPerCore: 1, sockets: 1, numaNodes: 1 };
  }
}

function positive(value: number | undefined): number | undefined {
  return value !== undefined && Number.isInteger(value) && value > 0 ? value : undefined;
}

/** Spreads physical cores evenly over the configured NUMA nodes, in physical core order. */
function assignNuma(cores: readonly LogicalCore[], numaNodes: number): LogicalCore[] {
  const physical = new Set(cores.map((c) => c.core)).size;
  const nodes = Math.max(1, Math.min(numaNodes, physical));
  return cores.map((c) => ({ ...c, numa: Math.floor((c.core * nodes) / physical) }));
}

/** os.cpus() times in ms: the same counters, coarser, for platforms without /proc/stat. */
function countersFromOs(): ProcStat {
  const perCore = new Map<number, CpuCounters>();
  let busy = 0;
  let total = 0;
  osCpus().forEach((cpu, id) => {
    const t = cpu.times;
    const coreBusy = t.user + t.nice + t.sys + t.irq;
    perCore.set(id, { busy: coreBusy, total: coreBusy + t.idle });
    busy += coreBusy;
    total += coreBusy + t.idle;
  });
  return { perCore, all: { busy, total } };
}
