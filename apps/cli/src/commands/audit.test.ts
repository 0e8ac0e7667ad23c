import { ok } from '@allot/core';
import type { AuditReply } from '@allot/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer, type NatsServerHandle } from '../../../../test/harness/index.ts';
import { runCli } from '../cli.ts';
import { serveFakeScheduler } from '../testing/fake-scheduler.ts';
import { recordingContext } from '../testing/recording-context.ts';

const orphan: AuditReply['discrepancies'][number] = {
  kind: 'orphan',
  nodeId: 'b',
  allocationId: 'b:7',
  requestId: 'vm-1',
  tenantId: 'acme',
  reason: 'intent_on_other_node',
  fence: 2,
  intentNodeId: 'a',
};

describe('allot audit', () => {
  let server: NatsServerHandle;
  let reply: AuditReply = { discrepancies: [], total: 0, nodesSwept: 3, nodesFailed: [] };
  let fake: Awaited<ReturnType<typeof serveFakeScheduler>>;
  const env = () => ({ ALLOT_NATS_SERVERS: server.url });

  beforeAll(async () => {
    server = await startNatsServer({ jetstream: false });
    fake = await serveFakeScheduler(server.url, { audit: () => ok(reply) });
  });
  afterAll(async () => {
    await fake.stop();
    await cleanupAll();
  });

  it('exits 0 when nothing disagrees', async () => {
    const ctx = recordingContext({ env: env() });
    expect(await runCli(['audit'], ctx)).toBe(0);
    expect(ctx.text()).toContain('3 node(s) listed; 0 discrepancies');
  });

  it('prints each discrepancy and exits 1; --json prints the reply as it is', async () => {
    reply = {
      discrepancies: [orphan, { kind: 'placement_missing', nodeId: 'a', requestId: 'vm-2', tenantId: 'acme' }],
      total: 2,
      nodesSwept: 3,
      nodesFailed: [],
    };
    const ctx = recordingContext({ env: env() });
    expect(await runCli(['audit'], ctx)).toBe(1);
    expect(ctx.text().split('\n').slice(2)).toEqual([
      'KIND               NODE  ALLOCATION  REQUEST  TENANT  REASON                              FENCE',
      'orphan             b     b:7         vm-1     acme    intent on other node (intent on a)      2',
      'placement_missing  a     -           vm-2     acme    -                                       -',
    ]);
    const json = recordingContext({ env: env() });
    expect(await runCli(['audit', '--json'], json)).toBe(1);
    expect(JSON.parse(json.text())).toEqual(reply);
  });

  it('exits 1 when a node could not be listed, even with nothing found', async () => {
    reply = {
      discrepancies: [],
      total: 0,
      nodesSwept: 2,
      nodesFailed: [{ nodeId: 'c', error: 'request to allot.agent.c.allocations timed out' }],
    };
    const ctx = recordingContext({ env: env() });
    expect(await runCli(['audit'], ctx)).toBe(1);
    expect(ctx.text()).toContain('not listed: c: request to allot.agent.c.allocations timed out');
  });
});
