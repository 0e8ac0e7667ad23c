import {
  EpochMsSchema,
  HealthSchema,
  LabelsSchema,
  NodeIdSchema,
  NodeLivenessSchema,
  NodeStateSchema,
  NodeViewSchema,
  ResourceUsageSchema,
  TaintSchema,
  TenantIdSchema,
  TenantQuotaSchema,
  TenantUsageSchema,
} from '@allot/core';
import { AgentAllocationsReplySchema, ClusterAllocationsReplySchema, AllotEventSchema, ClusterUsageSchema, MoveSchema } from './wire.ts';
import { z } from 'zod';

/** The zod these schemas are built with, for the page (apps/dashboard has no zod dependency of its own). */
export { z };

/*
 * The dashboard's HTTP contract (@allot/protocol/http): every JSON response and every server-sent event payload, as
 * zod schemas built from @allot/core's and the wire's. The coordinator produces them; the page (apps/dashboard)
 * imports this same module and validates what it receives. Browser-safe: zod, @allot/core and ./wire.ts only (no
 * codec, no node: imports).
 */

/** Memory or CPU figures of one node as the table shows them (the snapshot without its per-core list). */
export const ResourceFiguresSchema = ResourceUsageSchema.pick({
  capacity: true,
  systemReserve: true,
  effectiveCapacity: true,
  committed: true,
  used: true,
  reserved: true,
});
export type ResourceFigures = z.infer<typeof ResourceFiguresSchema>;

/** One node row: what the table needs, light enough to send 1,000 of them on connect. */
export const NodeRowSchema = z.object({
  nodeId: NodeIdSchema,
  liveness: NodeLivenessSchema,
  /** The operator state (decommissioned, lost, suspect, draining, ready): see NodeStateSchema. */
  state: NodeStateSchema.optional(),
  lastSeen: EpochMsSchema,
  bootId: z.string(),
  seq: z.int().min(0),
  labels: LabelsSchema,
  cordoned: z.boolean(),
  health: HealthSchema,
  memory: ResourceFiguresSchema,
  cpu: ResourceFiguresSchema.extend({
    sharedCores: z.int().min(0),
    exclusiveCores: z.int().min(0),
    reservedCores: z.int().min(0),
    cores: z.int().min(0),
  }),
  overcommit: z.object({ memory: z.number(), cpu: z.number() }),
  /** Tenant ids with live allocations here (the tenant filter). */
  tenants: z.array(TenantIdSchema),
  allocationCount: z.int().min(0),
  heartbeatMs: z.int().min(1),
  /** The operators' taints (`allot node taint`), with their reasons; absent when it has none (and from older coordinators). */
  taints: z.array(TaintSchema).max(32).optional(),
});
export type NodeRow = z.infer<typeof NodeRowSchema>;

/** The cluster: the coordinator's ClusterUsage, how much overcommit is in use, node counts by health, the cluster health. */
export const ClusterSummarySchema = z.object({
  usage: ClusterUsageSchema,
  /** committed / (capacity - system reserve) over nodes that are not lost: above 1 means overcommit is in use. */
  overcommitInUse: z.object({ memory: z.number().min(0), cpu: z.number().min(0) }),
  byHealth: z.object({ healthy: z.int(), degraded: z.int(), unhealthy: z.int(), stopped: z.int() }),
  health: HealthSchema,
});
export type ClusterSummary = z.infer<typeof ClusterSummarySchema>;

/** A tenant: what it uses across the cluster, and its quota (limits) when it has one. */
export const TenantRowSchema = z.object({
  tenantId: TenantIdSchema,
  /** From the nodes' snapshots (what the agents hold). */
  usage: TenantUsageSchema.extend({ nodes: z.int().min(0) }),
  /** What the quota service counts against the limits (absent without a quota). */
  quotaUsage: TenantUsageSchema.optional(),
  quota: TenantQuotaSchema.optional(),
});
export type TenantRow = z.infer<typeof TenantRowSchema>;

/** One point of the cluster utilization series (absolute figures; the page derives percentages). */
export const SeriesPointSchema = z.object({
  at: EpochMsSchema,
  memEffective: z.number(),
  memCommitted: z.number(),
  memUsed: z.number(),
  cpuEffective: z.number(),
  cpuCommitted: z.number(),
  cpuUsed: z.number(),
  nodesReady: z.number(),
});
export type SeriesPoint = z.infer<typeof SeriesPointSchema>;

/** The series, oldest first, columnar (uPlot's own layout). */
export const SeriesSchema = z.object({
  everyMs: z.int().min(1),
  capacity: z.int().min(1),
  at: z.array(z.number()),
  memEffective: z.array(z.number()),
  memCommitted: z.array(z.number()),
  memUsed: z.array(z.number()),
  cpuEffective: z.array(z.number()),
  cpuCommitted: z.array(z.number()),
  cpuUsed: z.array(z.number()),
  nodesReady: z.array(z.number()),
});
export type Series = z.infer<typeof SeriesSchema>;

/** An event of ALLOT_EVENTS with its stream sequence (the feed's key). */
export const FeedEventSchema = AllotEventSchema.extend({ seq: z.int().min(0) });
export type FeedEvent = z.infer<typeof FeedEventSchema>;

// ---------- server-sent events on GET /api/events/stream ----------

/** `event: snapshot`: everything, sent on connect and after a client fell behind. */
export const SnapshotMessageSchema = z.object({
  now: EpochMsSchema,
  cluster: ClusterSummarySchema,
  nodes: z.array(NodeRowSchema),
  tenants: z.array(TenantRowSchema),
  series: SeriesSchema,
  events: z.array(FeedEventSchema),
});
export type SnapshotMessage = z.infer<typeof SnapshotMessageSchema>;

/** `event: delta`: what changed since the last one (at most ~4 a second). Absent fields did not change. */
export const DeltaMessageSchema = z.object({
  now: EpochMsSchema,
  cluster: ClusterSummarySchema.optional(),
  /** Rows whose content changed (or new nodes). */
  nodes: z.array(NodeRowSchema).optional(),
  /** Nodes gone from the view. */
  removed: z.array(NodeIdSchema).optional(),
  /** Nodes only heard from again: nodeId -> lastSeen. */
  seen: z.record(NodeIdSchema, EpochMsSchema).optional(),
  tenants: z.array(TenantRowSchema).optional(),
  point: SeriesPointSchema.optional(),
  events: z.array(FeedEventSchema).optional(),
  /** Events left out of this delta because too many came at once. */
  eventsDropped: z.int().min(0).optional(),
});
export type DeltaMessage = z.infer<typeof DeltaMessageSchema>;

/** `event: hb`: the server is alive, and its clock. */
export const HeartbeatMessageSchema = z.object({ now: EpochMsSchema });

// ---------- JSON API responses ----------

export const ClusterResponseSchema = z.object({ now: EpochMsSchema, cluster: ClusterSummarySchema });
export const NodesResponseSchema = z.object({ now: EpochMsSchema, nodes: z.array(NodeRowSchema) });
export const NodeResponseSchema = z.object({ now: EpochMsSchema, node: NodeViewSchema });
export const AllocationsResponseSchema = AgentAllocationsReplySchema.extend({ nodeId: NodeIdSchema, at: EpochMsSchema });
export type AllocationsResponse = z.infer<typeof AllocationsResponseSchema>;
/** GET /api/allocations: one page of the cluster's allocations, as allot.op.allocations answers it. */
export const ClusterAllocationsResponseSchema = ClusterAllocationsReplySchema.extend({ now: EpochMsSchema });
export type ClusterAllocationsResponse = z.infer<typeof ClusterAllocationsResponseSchema>;
export const TenantsResponseSchema = z.object({ now: EpochMsSchema, tenants: z.array(TenantRowSchema) });
export const SeriesResponseSchema = SeriesSchema;
/** Every error response: a code and a sentence. */
export const ErrorResponseSchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

/** GET /api/moves: the moves holding a destination now (allot.op.moves; a scan of the placement intents, cached briefly). */
export const MovesResponseSchema = z.object({ now: EpochMsSchema, moves: z.array(MoveSchema), count: z.int().min(0) });
export type MovesResponse = z.infer<typeof MovesResponseSchema>;
