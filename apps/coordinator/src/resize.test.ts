import { AllocationRequestSchema, err, errorOf, ok, TenantQuotaSchema, type Allocation, type Result } from '@allot/core';
import type { PlaceReply } from '@allot/protocol';
import { describe, expect, it } from 'vitest';
import type { AgentCaller } from './agents.ts';
import { IntentStore } from './intents/intent-store.ts';
import { resizeAllocation } from './resize.ts';
import { MemoryBucket } from './store/memory-bucket.ts';

const live: Allocation = {
  id: 'a:1',
  requestId: 'vm-1',
  tenantId: 'acme',
  nodeId: 'a',
  request: AllocationRequestSchema.parse({ requestId: 'vm-1', tenantId: 'acme', resources: { memoryMiB: 2048, vcpus: 2 } }),
  granted: { memoryMiB: 2048, vcpus: 2 },
  cpu: null,
  status: 'active',
  priority: 0,
  createdAt: 1,
  updatedAt: 1,
};

/** One node `a` holding `live`; resize answers what `answer` says (the agent's own rules are the managers' tests). */
function agent(answer: (request: { requestId: string; resources: { memoryMiB: number; vcpus: number } }) => Result<Allocation>) {
  const calls: string[] = [];
  let current = live;
  const caller: AgentCaller = {
    call: ((nodeId: string, verb: string, request: never) => {
      calls.push(verb);
      if (verb === 'allocations') return Promise.resolve(ok({ allocations: nodeId === 'a' ? [current] : [], truncated: false }));
      if (verb === 'fence') return Promise.resolve(ok({ allocation: current, fence: (request as { fence: number }).fence }));
      if (verb === 'resize') {
        const r = request as { requestId: string; resources: { memoryMiB: number; vcpus: number } };
        const out = answer(r);
        if (out.ok) current = out.value;
        return Promise.resolve(out);
      }
      return Promise.resolve(err('internal', `unexpected ${verb}`));
    }) as AgentCaller['call'],
  };
  return { caller, calls, setCurrent: (a: Allocation) => (current = a) };
}

const grown = (memoryMiB: number, vcpus: number, at = 2): Allocation => ({ ...live, granted: { memoryMiB, vcpus }, updatedAt: at });

async function setup(quota: { maxMemoryMiB?: number; maxVcpus?: number } = {}) {
  let now = 1_000_000;
  const clock = { wall: () => now, monotonic: () => now };
  const store = new IntentStore(new MemoryBucket({ now: () => now }), { coordinatorId: 'c1', clock, finishedTtlMs: 0 });
  if (Object.keys(quota).length > 0) {
    const set = await store.setQuota(TenantQuotaSchema.parse({ tenantId: 'acme', ...quota }));
    if (!set.ok) throw new Error(set.error.message);
  }
  const created = await store.create({ requestId: 'vm-1', tenantId: 'acme', hash: 'h'.repeat(64), nodeId: 'a', memoryMiB: 2048, vcpus: 2 });
  if (!created.ok) throw new Error(created.error.message);
  const reply: PlaceReply = { nodeId: 'a', allocation: live, cpuset: [], preempted: [], attempts: 1 };
  const placed = await store.placed(created.value, reply);
  if (!placed.ok) throw new Error(placed.error.message);
  const usage = async () => {
    const u = await store.usage('acme');
    if (!u.ok || u.value === null) throw new Error('no usage');
    return { memoryMiB: u.value.value.usage.memoryMiB, vcpus: u.value.value.usage.vcpus };
  };
  const intent = async () => {
    const i = await store.get('vm-1');
    if (!i.ok || i.value === null) throw new Error('no intent');
    return i.value.value;
  };
  return { store, usage, intent, advance: (ms: number) => (now += ms) };
}

function unwrapOk<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

const resize = (requestId: string, memoryMiB: number, vcpus: number) => ({
  requestId,
  allocationId: 'a:1',
  resources: { memoryMiB, vcpus },
});

describe('resize through a coordinator', () => {
  it('grows: the quota usage and the intent follow the agent in one write', async () => {
    const s = await setup({ maxMemoryMiB: 8192, maxVcpus: 8 });
    const a = agent((r) => ok(grown(r.resources.memoryMiB, r.resources.vcpus)));
    const out = await resizeAllocation({ store: s.store, agents: a.caller, knowsNode: () => true }, resize('z1', 4096, 4), 'acme');
    expect(out.ok && out.value.granted).toEqual({ memoryMiB: 4096, vcpus: 4 });
    expect(await s.usage()).toEqual({ memoryMiB: 4096, vcpus: 4 });
    const intent = await s.intent();
    expect(intent).toMatchObject({ memoryMiB: 4096, vcpus: 4 });
    expect(intent.resizing).toBeUndefined();
    expect(intent.reply?.allocation.granted).toEqual({ memoryMiB: 4096, vcpus: 4 });
  });

  it('refuses a growth past the quota with quota_exceeded before asking the agent', async () => {
    const s = await setup({ maxMemoryMiB: 4096, maxVcpus: 8 });
    const a = agent((r) => ok(grown(r.resources.memoryMiB, r.resources.vcpus)));
    const out = await resizeAllocation({ store: s.store, agents: a.caller, knowsNode: () => true }, resize('z1', 6144, 2), 'acme');
    expect(!out.ok && out.error).toMatchObject({
      code: 'quota_exceeded',
      details: { limit: 'maxMemoryMiB', limitValue: 4096, current: 2048, requested: 4096 },
    });
    expect(a.calls).not.toContain('resize');
    expect(await s.usage()).toEqual({ memoryMiB: 2048, vcpus: 2 });
  });

  it('gives the held growth back when the agent has no room, fenced, and passes its figures on', async () => {
    const s = await setup();
    const refusal = errorOf('insufficient_capacity', 'cpu: no room', { resourceType: 'cpu', requested: 2, free: 1 });
    const a = agent(() => ({ ok: false, error: refusal }));
    const out = await resizeAllocation({ store: s.store, agents: a.caller, knowsNode: () => true }, resize('z1', 2048, 4), 'acme');
    expect(!out.ok && out.error).toEqual(refusal);
    expect(a.calls).toEqual(['allocations', 'resize', 'fence']);
    expect(await s.usage()).toEqual({ memoryMiB: 2048, vcpus: 2 });
    const intent = await s.intent();
    expect(intent).toMatchObject({ memoryMiB: 2048, vcpus: 2, attempt: 2 });
    expect(intent.resizing).toBeUndefined();
  });

  it('keeps the hold when the agent does not answer, and a retry of the same resize settles it', async () => {
    const s = await setup();
    let answer: Result<Allocation> = err('timeout', 'no answer from node a');
    const a = agent(() => answer);
    const d = { store: s.store, agents: a.caller, knowsNode: () => true };
    const first = await resizeAllocation(d, resize('z1', 2048, 4), 'acme');
    expect(!first.ok && first.error.code).toBe('timeout');
    expect(await s.usage()).toEqual({ memoryMiB: 2048, vcpus: 4 }); // never counts less than may be live
    expect((await s.intent()).resizing).toMatchObject({ requestId: 'z1', vcpus: 2 });
    const other = await resizeAllocation(d, resize('z2', 1024, 2), 'acme');
    expect(!other.ok && other.error.code).toBe('conflict');
    answer = ok(grown(2048, 4));
    const retried = await resizeAllocation(d, resize('z1', 2048, 4), 'acme');
    expect(retried.ok).toBe(true);
    expect(await s.usage()).toEqual({ memoryMiB: 2048, vcpus: 4 });
    expect((await s.intent()).resizing).toBeUndefined();
  });

  it("follows the agent's answer when the host's wall clock stepped back since the allocation last changed", async () => {
    // The allocation read before the resize was last changed at 5_000 on the host's wall clock; the clock then stepped
    // back, so the growth commits at 2. The intent and usage must still count the grown allocation (sim seed 3
    // --lifecycle: the coordinator took the older updatedAt for an older resize's answer and gave the growth back).
    const s = await setup({ maxMemoryMiB: 8192, maxVcpus: 8 });
    const a = agent((r) => ok(grown(r.resources.memoryMiB, r.resources.vcpus, 2)));
    const d = { store: s.store, agents: a.caller, knowsNode: () => true };
    unwrapOk(await resizeAllocation(d, resize('z0', 2048, 1), 'acme'));
    a.setCurrent({ ...live, granted: { memoryMiB: 2048, vcpus: 1 }, updatedAt: 5_000 });
    const out = await resizeAllocation(d, resize('z1', 4096, 4), 'acme');
    expect(out.ok && out.value.granted).toEqual({ memoryMiB: 4096, vcpus: 4 });
    expect(await s.usage()).toEqual({ memoryMiB: 4096, vcpus: 4 });
    expect(await s.intent()).toMatchObject({ memoryMiB: 4096, vcpus: 4 });
  });

  it('a retry of an older resize answers what it did, and the intent keeps what is live now', async () => {
    // z1 grew to 4096/4 (its answer lost, its hold kept by the reconciler), z2 shrank it to 1024/1; z1 retried is
    // answered from the agent's retained result (4096/4, at a later wall-clock instant than z2's after a step back).
    const s = await setup();
    const current: Allocation = { ...live, granted: { memoryMiB: 1024, vcpus: 1 }, updatedAt: 3 };
    const caller: AgentCaller = {
      call: ((_nodeId: string, verb: string) => {
        if (verb === 'allocations') return Promise.resolve(ok({ allocations: [current], truncated: false }));
        if (verb === 'resize') return Promise.resolve(ok(grown(4096, 4, 9)));
        return Promise.resolve(err('internal', `unexpected ${verb}`));
      }) as AgentCaller['call'],
    };
    const d = { store: s.store, agents: caller, knowsNode: () => true };
    const out = await resizeAllocation(d, resize('z1', 4096, 4), 'acme');
    expect(out.ok).toBe(true);
    expect(await s.usage()).toEqual({ memoryMiB: 1024, vcpus: 1 });
    expect((await s.intent()).resizing).toBeUndefined();
  });

  it('answers a resize done on the node even when its allocation was released before the coordinator read it again', async () => {
    const s = await setup();
    let released = false;
    const caller: AgentCaller = {
      call: ((_nodeId: string, verb: string) => {
        if (verb === 'allocations') return Promise.resolve(ok({ allocations: released ? [] : [live], truncated: false }));
        if (verb === 'resize') {
          released = true; // the tenant's release lands right after the resize
          return Promise.resolve(ok(grown(4096, 4)));
        }
        return Promise.resolve(err('internal', `unexpected ${verb}`));
      }) as AgentCaller['call'],
    };
    const out = await resizeAllocation({ store: s.store, agents: caller, knowsNode: () => true }, resize('z1', 4096, 4), 'acme');
    expect(out.ok && out.value.granted).toEqual({ memoryMiB: 4096, vcpus: 4 });
  });

  it('shrinks: the agent first, then the usage goes down', async () => {
    const s = await setup();
    unwrapOk(await s.store.setQuota(TenantQuotaSchema.parse({ tenantId: 'acme', maxMemoryMiB: 1024 }))); // lowered below usage: a shrink is still taken
    const a = agent((r) => ok(grown(r.resources.memoryMiB, r.resources.vcpus)));
    const out = await resizeAllocation({ store: s.store, agents: a.caller, knowsNode: () => true }, resize('z1', 1024, 1), 'acme');
    expect(out.ok).toBe(true);
    // The allocation is read again after the agent's answer: what is live then is what the intent settles to.
    expect(a.calls).toEqual(['allocations', 'resize', 'allocations']);
    expect(await s.usage()).toEqual({ memoryMiB: 1024, vcpus: 1 });
  });

  it("answers not_found for another tenant's allocation", async () => {
    const s = await setup();
    const a = agent((r) => ok(grown(r.resources.memoryMiB, r.resources.vcpus)));
    const out = await resizeAllocation({ store: s.store, agents: a.caller, knowsNode: () => true }, resize('z1', 4096, 4), 'other');
    expect(!out.ok && out.error.code).toBe('not_found');
    expect(a.calls).not.toContain('resize');
  });
});
