// Compile-time only (never imported at run time): the client's hand-written public types must match the wire schemas
// the coordinators validate against, so `pnpm typecheck` fails the day they drift apart.
import type { Allocation as WireAllocation, AllocationRequestInput, AllotError as WireError } from '@allot/core';
import type { ClusterCheckReply, PlaceReply } from '@allot/protocol';
import type { Allocation, AllotError, CheckAnswer, PlaceInput, Placement } from './index.ts';

type Assert<T extends true> = T;
type Extends<A, B> = [A] extends [B] ? true : false;

// What a scheduler writes is what the wire accepts (the client adds requestId and tenantId).
export type PlaceInputIsWireInput = Assert<
  Extends<Omit<PlaceInput, 'placement'> & { requestId: string; tenantId: string }, AllocationRequestInput>
>;
// What the wire answers reads as the client's types.
export type WireAllocationReads = Assert<Extends<WireAllocation, Allocation>>;
export type WirePlacementReads = Assert<Extends<Omit<PlaceReply, 'preempted'>, Omit<Placement, 'requestId'>>>;
export type WireCheckReads = Assert<Extends<ClusterCheckReply, CheckAnswer>>;
export type WireErrorReads = Assert<Extends<WireError, AllotError>>;
