/** @allot/managers: the host's resource manager (one actor, one slice per resource type) and the factory that builds it. */
export { ManagerFactory, HostBuilder } from './factory.ts';
export type { CreatorContext, HostFacts, ResourceCreator } from './factory.ts';
export { HostManager } from './host/host-manager.ts';
export type { AllocationPage, AllocationPageQuery, FenceOption, HostManagerOptions, HostView } from './host/host-manager.ts';
export type { FenceAnswer, Preemption } from './host/host-state.ts';
export type { ResizeRequest } from './host/resize.ts';
export { HostState, preemptionReleaseId } from './host/host-state.ts';
export { MemoryJournal, HostRecordSchema, HostStateSnapshotSchema, SliceConfigSchema } from './host/records.ts';
export type {
  DurableState,
  HostRecord,
  HostRecordKind,
  HostStateSnapshot,
  Journal,
  PreemptedVictim,
  RecordedFence,
  ReplayableJournal,
  RetainedRelease,
  RetainedResize,
} from './host/records.ts';
export type { ResizeAmounts, ResourceSlice, SliceConfig, SliceChange } from './host/slice.ts';
export { CountingPool, changeLimits } from './counting/counting-pool.ts';
export type { CountingUsage, LimitsChange } from './counting/counting-pool.ts';
export { systemClock } from './clock.ts';
export type { Clock } from './clock.ts';
export * from './cpu/index.ts';
export { parseAllocate, parseRequest, parseRelease, parsedAtTheEdge } from './host/fast-parse.ts';
