/** @allot/coordinator: the cluster composite and the scheduler endpoints over NATS. */
export { startCoordinator, COORDINATOR_VERSION, type Coordinator, type StartOptions } from './coordinator.ts';
export { ClusterManager } from './cluster-manager.ts';
export { ClusterView, type LivenessTransition, type ClusterViewOptions } from './view.ts';
export { PlaceFlow, type PlaceFlowDeps } from './place-flow.ts';
export { QuotaService, type TenantQuotaView } from './quotas.ts';
export { Reconciler, type ReconcilerDeps, type ReconcileOutcome, type ReconcileRound } from './reconciler.ts';
export { PlacementIntentSchema, requestHash, type PlacementIntent } from './intents.ts';
export { AgentClient, classifyFailure, type FailureKind } from './agents.ts';
export { CoordinatorConfigSchema, loadCoordinatorConfig, type CoordinatorConfig, type CoordinatorConfigInput } from './config.ts';
export { livenessMsgId } from './liveness.ts';
export {
  startHttpServer,
  DEFAULT_DASHBOARD_DIR,
  type DashboardServer,
  type HttpServerOptions,
  type HttpDeps,
  type RouteHandler,
} from './http/server.ts';
export { syntheticSnapshot, type SyntheticNode } from './http/fixtures.ts';
export * as dashboardApi from '@allot/protocol/http';
