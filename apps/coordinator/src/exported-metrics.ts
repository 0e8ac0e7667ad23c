import { mibToBytes } from '@allot/telemetry';
import { metrics } from '@opentelemetry/api';
import type { ClusterView } from './view.ts';

const LIVENESS = ['ready', 'suspect', 'lost'] as const;
const HEALTH = ['healthy', 'degraded', 'unhealthy', 'stopped'] as const;

/**
 * Gauges read from the cluster view at each scrape: node counts by liveness and by health, cordoned nodes, cluster
 * totals (capacity and used leave lost nodes out, as ClusterView.usage does) and, per node, committed/effective/used.
 * Memory in bytes, CPU in vCPUs.
 */
export function observeCluster(view: ClusterView, now: () => number = Date.now): void {
  const meter = metrics.getMeter('allot');
  const gauge = (name: string, description: string) => meter.createObservableGauge(name, { description });
  const nodes = gauge('allot_cluster_nodes', 'Nodes known to the coordinator, by liveness (ready, suspect, lost)');
  const byHealth = gauge('allot_cluster_nodes_by_health', 'Nodes by the health their agent last reported');
  const cordoned = gauge('allot_cluster_nodes_cordoned', 'Cordoned nodes');
  const allocations = gauge('allot_cluster_allocations', 'Live allocations over all nodes');
  const cluster = {
    memory: {
      capacity: gauge('allot_cluster_memory_capacity_bytes', 'Memory of the nodes that are not lost'),
      effective: gauge('allot_cluster_memory_effective_bytes', 'Memory the nodes that are not lost commit against'),
      committed: gauge('allot_cluster_memory_committed_bytes', 'Memory committed on all nodes'),
      used: gauge('allot_cluster_memory_used_bytes', 'Memory really in use on the nodes that are not lost'),
    },
    cpu: {
      capacity: gauge('allot_cluster_vcpus_capacity', 'Logical cores of the nodes that are not lost'),
      effective: gauge('allot_cluster_vcpus_effective', 'vCPUs the nodes that are not lost commit against'),
      committed: gauge('allot_cluster_vcpus_committed', 'vCPUs committed on all nodes'),
      used: gauge('allot_cluster_vcpus_used', 'vCPUs really busy on the nodes that are not lost'),
    },
  };
  const perNode = {
    memory: {
      effective: gauge('allot_node_memory_effective_bytes', 'Per node: memory it commits against, as last reported'),
      committed: gauge('allot_node_memory_committed_bytes', 'Per node: memory committed, as last reported'),
      used: gauge('allot_node_memory_used_bytes', 'Per node: memory in use, as last reported'),
    },
    cpu: {
      effective: gauge('allot_node_vcpus_effective', 'Per node: vCPUs it commits against, as last reported'),
      committed: gauge('allot_node_vcpus_committed', 'Per node: vCPUs committed, as last reported'),
      used: gauge('allot_node_vcpus_used', 'Per node: vCPUs busy, as last reported'),
    },
  };
  const refusedReports = meter.createObservableCounter('allot_decommissioned_reports_dropped_total', {
    description: 'Usage reports of decommissioned, removed nodes dropped by this coordinator (an agent that came back)',
  });
  const all = [
    nodes,
    byHealth,
    cordoned,
    allocations,
    refusedReports,
    ...Object.values(cluster.memory),
    ...Object.values(cluster.cpu),
    ...Object.values(perNode.memory),
    ...Object.values(perNode.cpu),
  ];
  meter.addBatchObservableCallback((r) => {
    const u = view.usage(now());
    for (const l of LIVENESS) r.observe(nodes, u.nodes[l], { liveness: l });
    r.observe(cordoned, u.nodes.cordoned);
    r.observe(refusedReports, view.decommissionedSnapshots);
    r.observe(allocations, u.allocationCount);
    for (const [resource, set] of [
      ['memory', cluster.memory],
      ['cpu', cluster.cpu],
    ] as const) {
      const unit = resource === 'memory' ? mibToBytes : (n: number) => n;
      r.observe(set.capacity, unit(u[resource].capacity));
      r.observe(set.effective, unit(u[resource].effectiveCapacity));
      r.observe(set.committed, unit(u[resource].committed));
      r.observe(set.used, unit(u[resource].used));
    }
    const health: Record<string, number> = { healthy: 0, degraded: 0, unhealthy: 0, stopped: 0 };
    for (const v of view.nodes()) {
      health[v.snapshot.health.status] = (health[v.snapshot.health.status] ?? 0) + 1;
      const node = { node: v.nodeId };
      for (const [resource, set] of [
        ['memory', perNode.memory],
        ['cpu', perNode.cpu],
      ] as const) {
        const unit = resource === 'memory' ? mibToBytes : (n: number) => n;
        const s = v.snapshot[resource];
        r.observe(set.effective, unit(s.effectiveCapacity), node);
        r.observe(set.committed, unit(s.committed), node);
        r.observe(set.used, unit(s.used), node);
      }
    }
    for (const h of HEALTH) r.observe(byHealth, health[h] ?? 0, { status: h });
  }, all);
}
