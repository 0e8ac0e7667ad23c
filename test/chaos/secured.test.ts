/**
 * The "secured" verdict against a NATS server without credentials or TLS (no containers): it must fail, so a chaos
 * run in which it passes shows the cluster really refused strangers and kept tenants off the agents.
 */
import { ok } from '@allot/core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer } from '../harness/index.ts';
import { auditSecured, type SecuredTarget } from './secured.ts';

let tenant: NatsConnection;
let target: SecuredTarget;

beforeAll(async () => {
  const server = await startNatsServer({ jetstream: false });
  tenant = await connect({ servers: [server.url] });
  const urls = [server.url, server.url, server.url];
  target = {
    clientUrls: urls,
    clientConfig: (_role, _name, servers = urls) => ({ servers, requestTimeoutMs: 2_000 }),
    // The auditor sees a1 healthy and holding nothing: only the server's answers decide the verdict.
    agent: (async (_nodeId: string, verb: string) =>
      ok(verb === 'allocations' ? { allocations: [], truncated: false } : { nodeId: 'a1' })) as unknown as SecuredTarget['agent'],
    tenant: () => tenant,
    agents: () => ['a1'],
    // An agent whose own publish the server refused: a right the generator forgot.
    // The coordinator's late reply (after a reconnect to another server) is noted, not a failure.
    logs: async (member: string) =>
      member === 'a1'
        ? [
            '{"level":50,"err":{"message":"Permissions Violation for Publish to \\"$JS.API.STREAM.INFO.X\\""},"msg":"NATS connection error"}',
          ]
        : member === 'c1'
          ? [
              '{"level":50,"err":{"message":"Permissions Violation for Publish to \\"_INBOX_UD4AEX2YX6RURGG4UJM7UIKS4XZH2L5UTGPTLAV2XIPPTP2AHDGEJLOW.927nh3JfkdidANNRoboBGQ.ace3p54z\\""}}',
            ]
          : [],
  };
}, 30_000);

afterAll(async () => {
  await tenant?.close();
  await cleanupAll();
});

describe('the secured verdict', () => {
  it('fails on an open server: anyone connects, a tenant is refused nothing by the server; and on a process denied a right', async () => {
    const verdict = await auditSecured(target, 'open');
    expect(verdict.ok).toBe(false);
    expect(verdict.problems.filter((p) => p.includes('let in a client with plain, no credentials'))).toHaveLength(3);
    expect(verdict.problems.some((p) => p.startsWith("t0 -> allot.agent.a1.allocate was not refused by the server's permissions"))).toBe(
      true,
    );
    expect(verdict.problems.some((p) => p.startsWith("t0 -> allot.sched.t1.place was not refused by the server's permissions"))).toBe(true);
    expect(verdict.problems.some((p) => p.startsWith('a1 was denied 1 time(s) by the server'))).toBe(true);
    expect(verdict.problems.some((p) => p.startsWith('c1'))).toBe(false);
    expect(verdict.note).toContain("1 permission denials in the processes' logs (1 late replies)");
  });
});
