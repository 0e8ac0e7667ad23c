import type { LimitsPatch } from './host.ts';
import type { Allocation, AllocationRequestInput, AllocationStatus, Health, Limits, ResourceType, ResourceUsage } from './domain.ts';
import type { Result } from './errors.ts';

/** What checkAvailability answers: whether it fits, and the figures either way. */
export interface Availability {
  readonly fits: boolean;
  /** Per resource type: requested, free and effective capacity at the time of the check. */
  readonly figures: Record<string, { requested: number; free: number; effectiveCapacity: number }>;
  /** When it does not fit, the typed reason (insufficient_capacity, unavailable, ...). */
  readonly reason?: { code: string; message: string };
}

export interface AllocationFilter {
  readonly status?: AllocationStatus | 'live';
  readonly tenantId?: string;
  /** Only the allocation made by this request id. */
  readonly requestId?: string;
  readonly limit?: number;
}

export interface ReleaseTarget {
  /** The idempotency key of the release itself. */
  readonly requestId: string;
  /** Which allocation: its id, or the request id that created it. */
  readonly allocationId?: string;
  readonly allocationRequestId?: string;
}

/** Limits keyed by resource type: a composite manages several. */
export type LimitsByType = Partial<Record<ResourceType, Limits>>;
/** A patch per resource type: only the fields named change (see LimitsPatchSchema). */
export type LimitsUpdate = Partial<Record<ResourceType, LimitsPatch>>;

/**
 * What a scope's allocate/reserve, getUsage and getAllocations answer. A host answers the plain shapes (HostAnswers);
 * the cluster's answers carry what only it knows (ClusterAnswers in apps/coordinator: a placement names the allocation
 * with its node, cpuset, victims and attempts; usage counts nodes; a listing is one page with its cursor), so each verb
 * is one contract method at either scope and its endpoint only translates the wire.
 */
export interface ScopeAnswers {
  readonly placed: unknown;
  readonly usage: unknown;
  readonly listing: unknown;
}

/** The host's answers: the allocation, usage per resource type, the allocations matching the filter. */
export interface HostAnswers extends ScopeAnswers {
  readonly placed: Allocation;
  readonly usage: ResourceUsage[];
  readonly listing: Allocation[];
}

/**
 * The contract every resource manager keeps, at host scope (the agent's HostManager, one slice per resource type) and
 * at cluster scope (the coordinator, where allocate means place). Metrics go out through OpenTelemetry, not here.
 *
 * Every method is async and returns a Result: errors are values with codes, never exceptions to parse.
 * Mutations are idempotent by request id. A scope's methods may take more than the contract names (the host's a fence,
 * the cluster's placement options and listing cursor), as trailing or wider arguments.
 */
export interface ResourceManager<A extends ScopeAnswers = HostAnswers> {
  /** A stable name for logs and metrics: `composite` (a host), `cluster`. */
  readonly name: string;
  /** The resource types this manager owns. */
  readonly resourceTypes: readonly ResourceType[];

  // ----- core operations -----
  /** Commit the request (all of its resource types, all or nothing). Same requestId, same request: same allocation. */
  allocate(request: AllocationRequestInput): Promise<Result<A['placed']>>;
  /** Release an allocation or a reservation. Releasing what is already released succeeds and changes nothing. */
  release(target: ReleaseTarget): Promise<Result<Allocation>>;
  /** A dry run: would the request fit now? Changes nothing. */
  checkAvailability(request: AllocationRequestInput): Promise<Result<Availability>>;
  getUsage(): Promise<Result<A['usage']>>;
  getAllocations(filter?: AllocationFilter): Promise<Result<A['listing']>>;

  // ----- reservations -----
  /** Hold capacity for request.reservation.ttlMs; released automatically when it expires, also across restarts. */
  reserve(request: AllocationRequestInput): Promise<Result<A['placed']>>;
  /** Turn a reservation Active. An expired or released reservation is not_found or conflict. */
  activateReservation(allocationId: string, requestId: string): Promise<Result<Allocation>>;

  // ----- lifecycle -----
  start(): Promise<Result<void>>;
  stop(): Promise<Result<void>>;
  /** `stopped` once stopped: how a caller learns whether the manager still serves (the health verbs answer it). */
  healthCheck(): Promise<Result<Health>>;

  // ----- configuration -----
  /**
   * Limits are a host's: at host scope its own (`node` is the host itself), at cluster scope the named node's, asked of
   * its agent (`limits.get`); a cluster manager refuses a call without `node` (invalid_request naming it).
   */
  getLimits(options?: LimitsTarget): Promise<Result<LimitsByType>>;
  /**
   * A patch of the host's limits (only the fields named change); at cluster scope sent to the named node's agent
   * (`limits.update`). Refuses to shrink below what is committed (conflict, with the figures) unless force is set.
   */
  updateLimits(update: LimitsUpdate, options?: LimitsTarget & { force?: boolean }): Promise<Result<LimitsByType>>;
}

/** Which host's limits: required at cluster scope, where limits exist only per node. */
export interface LimitsTarget {
  readonly node?: string;
}
