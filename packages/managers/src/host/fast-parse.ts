import {
  AgentAllocateRequestSchema,
  AgentReleaseRequestSchema,
  AllocationRequestSchema,
  MAX_MEMORY_MIB,
  MAX_RESERVATION_TTL_MS,
  MAX_VCPUS,
  zodToAllotError,
  type AgentAllocateRequest,
  type AgentReleaseRequest,
  type AllocationRequest,
  type Result,
} from '@allot/core';

/*
 * A hand-written fast path for the common request shapes, because zod's parse costs about 5 µs per allocate and
 * 4 µs per release, more than the whole rest of a composite allocate. It ACCEPTS ONLY inputs it can prove valid
 * (exactly the known keys, simple values) and builds exactly the object zod would (defaults filled); anything
 * else, valid or not, goes to zod, which stays the single source of truth for what is valid and for the error
 * messages. A property test checks the two agree.
 */

const REQUEST_ID = /^[A-Za-z0-9_:=-]{1,128}$/;
const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;
const ALLOCATION_ID = /^[A-Za-z0-9_:=-]{1,160}$/;

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

/**
 * A plain object literal (prototype Object.prototype): no array, Date, Map or class instance, whose own keys are
 * all its keys. zod treats those differently (an array is not an object to it, a record refuses a Map), so they go to zod.
 */
function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

/** `fence` travels beside a request (the agent's allocate and reserve) but is never part of it: ignored here. */
function isRequestKey(k: string): boolean {
  return (
    k === 'fence' ||
    k === 'requestId' ||
    k === 'tenantId' ||
    k === 'resources' ||
    k === 'priority' ||
    k === 'cpu' ||
    k === 'reservation' ||
    k === 'metadata'
  );
}

/** The fast path; undefined means "ask zod". */
function fastRequest(input: unknown): AllocationRequest | undefined {
  if (!isPlain(input)) return undefined;
  for (const k in input) if (!isRequestKey(k)) return undefined;
  const requestId = input.requestId;
  const tenantId = input.tenantId;
  const resources = input.resources;
  const priority = input.priority;
  const cpu = input.cpu;
  const reservation = input.reservation;
  const metadata = input.metadata;
  if (typeof requestId !== 'string' || !REQUEST_ID.test(requestId)) return undefined;
  if (typeof tenantId !== 'string' || !TOKEN.test(tenantId)) return undefined;
  if (!isPlain(resources)) return undefined;
  for (const k in resources) if (k !== 'memoryMiB' && k !== 'vcpus') return undefined;
  const memoryMiB = resources.memoryMiB;
  const vcpus = resources.vcpus;
  if (!isInt(memoryMiB, 0, MAX_MEMORY_MIB) || !isInt(vcpus, 0, MAX_VCPUS) || (memoryMiB === 0 && vcpus === 0)) return undefined;
  if (priority !== undefined && !isInt(priority, 0, 1000)) return undefined;
  let exclusive = false;
  let numa: AllocationRequest['cpu']['numa'] = 'any';
  if (cpu !== undefined) {
    if (!isPlain(cpu)) return undefined;
    for (const k in cpu) if (k !== 'exclusive' && k !== 'numa') return undefined;
    const e = cpu.exclusive;
    const n = cpu.numa;
    if (e !== undefined && typeof e !== 'boolean') return undefined;
    if (n !== undefined && n !== 'any' && n !== 'prefer' && n !== 'require') return undefined;
    exclusive = e ?? false;
    numa = n ?? 'any';
  }
  // Metadata and reservations are rarer: only the simplest forms take the fast path.
  if (metadata !== undefined && (!isPlain(metadata) || Object.keys(metadata).length > 0)) return undefined;
  let ttlMs: number | undefined;
  if (reservation !== undefined) {
    if (!isPlain(reservation)) return undefined;
    for (const k in reservation) if (k !== 'ttlMs') return undefined;
    const t = reservation.ttlMs;
    if (!isInt(t, 1, MAX_RESERVATION_TTL_MS)) return undefined;
    ttlMs = t;
  }
  const out: AllocationRequest = {
    requestId,
    tenantId,
    resources: { memoryMiB, vcpus },
    priority: priority ?? 0,
    cpu: { exclusive, numa },
    metadata: {},
  };
  if (ttlMs !== undefined) out.reservation = { ttlMs };
  return out;
}

/**
 * Requests an edge has already parsed with these functions (the agent's endpoints, through the service framework). The
 * edge hands them to the ResourceManager methods, which parse their input, so each verb would be parsed twice;
 * marked, they are taken as they are and every verb is parsed once, at the edge. A WeakSet: the mark lives as long as
 * the request object and costs one lookup.
 */
const parsedAtEdge = new WeakSet<object>();

/** Marks `request` as parsed by parseRequest/parseRelease (or the verb's schema) at the edge, and returns it. */
export function parsedAtTheEdge<T extends object>(request: T): T {
  parsedAtEdge.add(request);
  return request;
}

function isParsedAtEdge(input: unknown): boolean {
  return typeof input === 'object' && input !== null && parsedAtEdge.has(input);
}

/** Parses an allocation request: fast path when provably valid, zod otherwise. */
export function parseRequest(input: unknown): Result<AllocationRequest> {
  if (isParsedAtEdge(input)) return { ok: true, value: input as AllocationRequest };
  const fast = fastRequest(input);
  if (fast !== undefined) return { ok: true, value: fast };
  const parsed = AllocationRequestSchema.safeParse(input);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, error: zodToAllotError(parsed.error) };
}

function isFence(v: unknown): v is number {
  return isInt(v, 1, Number.MAX_SAFE_INTEGER);
}

/** Parses the agent's allocate (a request plus an optional fence) the same way. */
export function parseAllocate(input: unknown): Result<AgentAllocateRequest> {
  if (isPlain(input) && (input.fence === undefined || isFence(input.fence))) {
    const parsed = parseRequest(input);
    if (!parsed.ok) return parsed;
    const out: AgentAllocateRequest = parsed.value;
    if (input.fence !== undefined) out.fence = input.fence;
    return { ok: true, value: out };
  }
  const parsed = AgentAllocateRequestSchema.safeParse(input);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, error: zodToAllotError(parsed.error) };
}

/** Parses a release request the same way. */
export function parseRelease(input: unknown): Result<AgentReleaseRequest> {
  if (isParsedAtEdge(input)) return { ok: true, value: input as AgentReleaseRequest };
  if (isPlain(input)) {
    let plain = true;
    for (const k in input)
      if (k !== 'requestId' && k !== 'allocationId' && k !== 'allocationRequestId' && k !== 'reason' && k !== 'fence') plain = false;
    const { requestId, allocationId, allocationRequestId, reason, fence } = input;
    const okId = typeof requestId === 'string' && REQUEST_ID.test(requestId);
    const okAlloc = allocationId === undefined || (typeof allocationId === 'string' && ALLOCATION_ID.test(allocationId));
    const okReq = allocationRequestId === undefined || (typeof allocationRequestId === 'string' && REQUEST_ID.test(allocationRequestId));
    const okReason = reason === undefined || (typeof reason === 'string' && reason.length <= 256);
    const okFence = fence === undefined || isFence(fence);
    if (plain && okId && okAlloc && okReq && okReason && okFence && (allocationId !== undefined || allocationRequestId !== undefined)) {
      const out: AgentReleaseRequest = { requestId };
      if (allocationId !== undefined) out.allocationId = allocationId;
      if (allocationRequestId !== undefined) out.allocationRequestId = allocationRequestId;
      if (reason !== undefined) out.reason = reason;
      if (fence !== undefined) out.fence = fence;
      return { ok: true, value: out };
    }
  }
  const parsed = AgentReleaseRequestSchema.safeParse(input);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, error: zodToAllotError(parsed.error) };
}
