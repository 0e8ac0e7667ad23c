import type { Health, ResourceUsage, Result } from '@allot/core';
import { mibToBytes } from '@allot/telemetry';
import { metrics, type Histogram } from '@opentelemetry/api';

/** What the host gauges read at each scrape (undefined until the host is started). */
export type HostSource = () =>
  | { nodeId: string; usage(): Promise<Result<ResourceUsage[]>>; health(): Promise<Result<Health>>; cordoned(): Promise<boolean> }
  | undefined;

const HEALTH_STATUSES = ['healthy', 'degraded', 'unhealthy', 'stopped'] as const;

/**
 * The agent's own metrics, through @opentelemetry/api (no-ops unless main.ts started the SDK): the ledger's fsync
 * latency and batch size (recorded from the ledger's onFsync hook) and, read at each scrape from the host manager,
 * committed/effective/used per resource (memory in bytes, CPU in vCPUs), live allocations, health and cordon.
 * Allocation counts and latency come from @allot/managers (allot_allocations_total, allot_allocation_duration_seconds).
 */
export class AgentMetrics {
  readonly #fsync: Histogram;
  readonly #fsyncRecords: Histogram;

  constructor(host: HostSource) {
    const meter = metrics.getMeter('allot');
    this.#fsync = meter.createHistogram('allot_ledger_fsync_duration_seconds', {
      description: 'Ledger group-commit fdatasync latency',
      unit: 's',
    });
    this.#fsyncRecords = meter.createHistogram('allot_ledger_fsync_records', {
      description: 'Records made durable by one ledger fdatasync (group commit batch size)',
      advice: { explicitBucketBoundaries: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] },
    });
    const gauge = (name: string, description: string) => meter.createObservableGauge(name, { description });
    const memory = {
      committed: gauge('allot_host_memory_committed_bytes', 'Memory held by live allocations and reservations on this host'),
      effective: gauge(
        'allot_host_memory_effective_bytes',
        'Memory this host commits against: (capacity - reserve) x overcommit, capped by the hard limit',
      ),
      used: gauge('allot_host_memory_used_bytes', 'Memory really in use on this host, from the probe'),
      capacity: gauge('allot_host_memory_capacity_bytes', 'Physical memory of this host'),
    };
    const cpu = {
      committed: gauge('allot_host_vcpus_committed', 'vCPUs held by live allocations and reservations on this host'),
      effective: gauge('allot_host_vcpus_effective', 'vCPUs this host commits against (shared cores x overcommit, plus exclusive)'),
      used: gauge('allot_host_vcpus_used', 'vCPUs really busy on this host, from the probe'),
      capacity: gauge('allot_host_vcpus_capacity', 'Logical cores of this host'),
    };
    const allocations = gauge('allot_host_allocations', 'Live allocations on this host');
    const health = gauge('allot_host_health', '1 for the current health status of this host, 0 for the others');
    const cordoned = gauge('allot_host_cordoned', '1 when this host is cordoned (takes no new allocations)');
    meter.addBatchObservableCallback(
      async (r) => {
        const h = host();
        if (h === undefined) return;
        const node = { node: h.nodeId };
        const [usage, status, isCordoned] = await Promise.all([h.usage(), h.health(), h.cordoned()]);
        if (usage.ok) {
          for (const u of usage.value) {
            const set = u.resourceType === 'memory' ? memory : u.resourceType === 'cpu' ? cpu : undefined;
            if (set === undefined) continue;
            const unit = u.resourceType === 'memory' ? mibToBytes : (n: number) => n;
            r.observe(set.committed, unit(u.committed), node);
            r.observe(set.effective, unit(u.effectiveCapacity), node);
            r.observe(set.used, unit(u.used), node);
            r.observe(set.capacity, unit(u.capacity), node);
            if (u.resourceType === 'memory') r.observe(allocations, u.allocationCount, node);
          }
        }
        const current = status.ok ? status.value.status : 'unhealthy';
        for (const s of HEALTH_STATUSES) r.observe(health, s === current ? 1 : 0, { ...node, status: s });
        r.observe(cordoned, isCordoned ? 1 : 0, node);
      },
      [...Object.values(memory), ...Object.values(cpu), allocations, health, cordoned],
    );
  }

  /** From the ledger's onFsync hook. */
  fsync(durationMs: number, records: number): void {
    this.#fsync.record(durationMs / 1000);
    this.#fsyncRecords.record(records);
  }
}
