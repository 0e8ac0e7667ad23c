import {
  AllotEventSchema,
  CLUSTER_EVENT_NODE,
  decode,
  encode,
  eventSubject,
  EVENTS_STREAM,
  HostHealthSchema,
  PlaceReplySchema,
  schedSubject,
  schedSubjectFor,
  type PlaceRequestInput,
} from '@allot/protocol';
import { requestTyped } from '@allot/nats';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer, waitFor, type NatsServerHandle } from '../../../test/harness/index.ts';
import { requestHash } from './intents.ts';
import { jetstreamManager, type NatsConnection } from './nats-deps.ts';
import { PlaceRequestSchema } from '@allot/protocol';
import { connectTo, ensureTestStreams, startFakeAgents, startTestCoordinator } from './testing/cluster.ts';
import type { FakeAgents } from './testing/fake-agents.ts';
import type { Coordinator } from './coordinator.ts';

let server: NatsServerHandle;
let client: NatsConnection;
let agents: FakeAgents;
const closers: (() => Promise<void>)[] = [];

async function coordinator(id: string): Promise<{ coordinator: Coordinator; nc: NatsConnection }> {
  const c = await startTestCoordinator(server.url, { coordinatorId: id });
  closers.push(async () => {
    await c.coordinator.stop();
    await c.nc.close();
  });
  return c;
}

function placeReq(requestId: string, memoryMiB: number, extra: Partial<PlaceRequestInput> = {}): PlaceRequestInput {
  return { request: { requestId, tenantId: 't1', resources: { memoryMiB, vcpus: 1 } }, ...extra };
}

function place(nc: NatsConnection, req: unknown) {
  return requestTyped(nc, schedSubjectFor('place', req) ?? schedSubject('place', 't1'), req, PlaceReplySchema, { timeoutMs: 10_000 });
}

beforeEach(async () => {
  server = await startNatsServer();
  client = await connectTo(server.url, 'test-client');
  agents = await startFakeAgents(
    client,
    { a: { memoryMiB: 4096, cores: 8 }, b: { memoryMiB: 2048, cores: 8 }, c: { memoryMiB: 1024, cores: 8, labels: { zone: 'z2' } } },
    { heartbeatMs: 200 },
  );
});

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  agents.stop();
  await client.close();
  await cleanupAll();
});

describe('place', () => {
  it('places a VM on a node with room and answers the node, the allocation and the attempts', async () => {
    await startStreamsAndAgents();
    await coordinator('c1');
    const r = await place(client, placeReq('p-1', 512));
    if (!r.ok) throw new Error(r.error.message);
    expect(['a', 'b', 'c']).toContain(r.value.nodeId);
    expect(r.value.allocation.requestId).toBe('p-1');
    expect(r.value.attempts).toBe(1);
    expect(agents.live(r.value.nodeId).map((a) => a.requestId)).toEqual(['p-1']);
  });

  it('answers a retry with the same request id with the same allocation and commits nothing new', async () => {
    await startStreamsAndAgents();
    await coordinator('c1');
    const first = await place(client, placeReq('p-2', 512));
    const again = await place(client, placeReq('p-2', 512));
    expect(again).toEqual(first);
    const commits = [...agents.nodes.values()].reduce((s, n) => s + n.commits, 0);
    expect(commits).toBe(1);
  });

  it('answers a retry with the stored placement even when nothing would fit it any more (the intent decides first)', async () => {
    await startStreamsAndAgents();
    const { coordinator: c } = await coordinator('c1');
    const first = await place(client, placeReq('p-full', 3_000));
    if (!first.ok) throw new Error(first.error.message);
    expect(first.value.nodeId).toBe('a');
    // Once the view knows a is taken, 3000 MiB fits nowhere: the create-first path must not answer insufficient_capacity.
    await waitFor(() => c.view.get('a')?.snapshot.allocationCount === 1, { message: 'the view to see the placement' });
    const now = await c.flow.check(PlaceRequestSchema.parse(placeReq('other', 3_000)));
    expect(now.ok && now.value.fits).toBe(false);
    expect(await place(client, placeReq('p-full', 3_000))).toEqual(first);
    expect(agents.nodes.get('a')?.commits).toBe(1);
  });

  it('refuses the same request id with a different request as a conflict', async () => {
    await startStreamsAndAgents();
    await coordinator('c1');
    expect((await place(client, placeReq('p-3', 512))).ok).toBe(true);
    const r = await place(client, placeReq('p-3', 768));
    expect(r.ok ? 'ok' : r.error.code).toBe('conflict');
  });

  it('says why nothing fits, counting the nodes rejected per reason', async () => {
    await startStreamsAndAgents();
    const { coordinator: c } = await coordinator('c1');
    c.view.setCordoned('a', true);
    const r = await place(client, placeReq('p-4', 3000));
    if (r.ok) throw new Error('expected a refusal');
    expect(r.error.code).toBe('insufficient_capacity');
    expect(r.error.message).toBe('0/3 nodes are available: 2 Insufficient memory, 1 node cordoned.');
    expect(r.error.details?.['rejected']).toEqual({ 'Insufficient memory': 2, 'node cordoned': 1 });
    expect(agents.allocateCalls).toBe(0);
  });

  it('records a refused place in the events stream, once per request id however often it is retried', async () => {
    await startStreamsAndAgents();
    await coordinator('c1');
    await place(client, placeReq('p-refused', 1_000_000));
    await place(client, placeReq('p-refused', 1_000_000));
    const jsm = await jetstreamManager(client);
    await waitFor(
      async () =>
        (await jsm.streams.getMessage(EVENTS_STREAM, { last_by_subj: eventSubject(CLUSTER_EVENT_NODE, 'refused') }).catch(() => null)) !==
        null,
      { timeoutMs: 5_000, message: 'no refused event' },
    );
    const stored = await jsm.streams.getMessage(EVENTS_STREAM, { last_by_subj: eventSubject(CLUSTER_EVENT_NODE, 'refused') });
    const event = decode(AllotEventSchema, stored!.data);
    expect(event.ok && event.value).toMatchObject({
      kind: 'refused',
      requestId: 'p-refused',
      tenantId: 't1',
      error: { code: 'insufficient_capacity' },
    });
    const info = await jsm.streams.info(EVENTS_STREAM, { subjects_filter: eventSubject(CLUSTER_EVENT_NODE, 'refused') });
    expect(info.state.subjects?.[eventSubject(CLUSTER_EVENT_NODE, 'refused')]).toBe(1);
  });

  it('answers a malformed request with invalid_request naming the field, and keeps serving', async () => {
    await startStreamsAndAgents();
    await coordinator('c1');
    const bad = await place(client, { request: { requestId: 'x', tenantId: 't1', resources: { memoryMiB: -5, vcpus: 1 } } });
    if (bad.ok) throw new Error('expected invalid_request');
    expect(bad.error.code).toBe('invalid_request');
    expect(bad.error.message).toMatch(/request\.resources\.memoryMiB/);
    expect((await place(client, placeReq('p-5', 256))).ok).toBe(true);
  });

  it('moves to the next candidate when an agent refuses because the view was stale', async () => {
    await startStreamsAndAgents();
    await coordinator('c1');
    // Fill node c behind the coordinator's back: the view still shows it empty until its next snapshot.
    const c = agents.nodes.get('c');
    if (!c) throw new Error('no node c');
    const before = c.memoryCommitted;
    c.memoryCommitted = c.spec.memoryMiB;
    const r = await place(client, placeReq('p-6', 900, { placement: { strategy: 'manual', nodeId: 'c' } }));
    expect(r.ok ? 'ok' : r.error.code).toBe('insufficient_capacity');
    if (!r.ok) expect(r.error.message).toMatch(/1 refused by its agent/);
    c.memoryCommitted = before;
  });

  it('never places on a cordoned node', async () => {
    await startStreamsAndAgents();
    await coordinator('c1');
    const cordon = await requestTyped(client, schedSubject('cordon'), { requestId: 'cord-1', nodeId: 'a' }, HostHealthSchema, {
      timeoutMs: 5_000,
    });
    expect(cordon.ok).toBe(true);
    for (let i = 0; i < 6; i++) {
      const r = await place(client, placeReq(`p-7-${i}`, 256));
      if (r.ok) expect(r.value.nodeId).not.toBe('a');
    }
    expect(agents.live('a')).toEqual([]);
  });
});

describe('placement intents', () => {
  it('resolves a place retried on a second coordinator, after the first died having chosen a node, to the same allocation', async () => {
    await startStreamsAndAgents();
    const { coordinator: c1 } = await coordinator('c1');
    const req = PlaceRequestSchema.parse(placeReq('p-8', 512));
    // What coordinator c1 did before dying: wrote the intent naming node b, sent allocate to b (which committed).
    const created = await c1.store.create({
      requestId: 'p-8',
      tenantId: 't1',
      hash: requestHash(req),
      nodeId: 'b',
      memoryMiB: 512,
      vcpus: 1,
    });
    expect(created.ok).toBe(true);
    const committed = await client.request('allot.agent.b.allocate', encode({ ...req.request, fence: 1 }), { timeout: 5_000 });
    expect(committed.data.byteLength).toBeGreaterThan(0);

    await coordinator('c2');
    // c1 is gone: its service stops answering, c2 alone serves the queue group.
    await closers.shift()?.();
    const r = await place(client, placeReq('p-8', 512));
    if (!r.ok) throw new Error(r.error.message);
    expect(r.value.nodeId).toBe('b');
    expect(agents.nodes.get('b')?.commits).toBe(1);
    expect(agents.nodes.get('a')?.commits).toBe(0);
  });

  it('keeps a placement on a node that may have committed it: a timed-out send retried into "no responders" does not move on', async () => {
    // Node a commits 400 ms after it receives an allocate; the coordinator gives up on a reply after 200 ms and retries
    // once. Between the two sends a's agent goes away (the chaos suite's agent killed after committing, before
    // replying), so the retry meets no responders, while the first allocate still commits on a.
    agents.stop();
    agents = await startFakeAgents(
      client,
      { a: { memoryMiB: 4096, cores: 8 }, b: { memoryMiB: 4096, cores: 8 } },
      { heartbeatMs: 200, allocateDelayMs: 400 },
    );
    await startStreamsAndAgents();
    const c = await startTestCoordinator(server.url, { coordinatorId: 'c1', place: { agentTimeoutMs: 200, timeoutRetries: 1 } });
    closers.push(async () => {
      await c.coordinator.stop();
      await c.nc.close();
    });
    const spy = await connectTo(server.url, 'spy');
    closers.push(() => spy.close());
    const watch = spy.subscribe('allot.agent.a.allocate', {
      callback: () => {
        setTimeout(() => {
          agents.stop();
          watch.unsubscribe();
        }, 50);
      },
    });
    await spy.flush();

    const r = await place(client, placeReq('p-10', 512, { placement: { strategy: 'manual', nodeId: 'a' } }));
    expect(!r.ok && r.error.code).toBe('timeout');
    await waitFor(() => agents.live('a').length === 1, { message: 'the first allocate to commit on a' });
    expect(agents.live('b')).toEqual([]);
    const intent = await c.coordinator.store.get('p-10');
    expect(intent.ok && intent.value?.value).toMatchObject({ state: 'pending', nodeId: 'a' });
  });

  it('asks the pending node again rather than a second node, even when the view prefers another', async () => {
    await startStreamsAndAgents();
    const { coordinator: c1 } = await coordinator('c1');
    const req = PlaceRequestSchema.parse(placeReq('p-9', 256, { placement: { strategy: 'spread' } }));
    // Spread would pick a (most free); the intent names c, where the allocate never arrived.
    await c1.store.create({ requestId: 'p-9', tenantId: 't1', hash: requestHash(req), nodeId: 'c', memoryMiB: 256, vcpus: 1 });
    const r = await place(client, placeReq('p-9', 256, { placement: { strategy: 'spread' } }));
    if (!r.ok) throw new Error(r.error.message);
    expect(r.value.nodeId).toBe('c');
    expect(agents.nodes.get('a')?.commits).toBe(0);
  });
});

async function startStreamsAndAgents(): Promise<void> {
  // The first coordinator creates the streams; agents publish after, so start one throwaway ensure here.
  await ensureTestStreams(client);
  await agents.start();
}
