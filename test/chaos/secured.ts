/**
 * The verdict that the chaos cluster runs secured, checked at the end of every scenario (after the faults healed, so
 * also on servers that were killed or restarted): each of the three servers refuses a client without credentials, and
 * a tenant's identity reaches neither an agent nor another tenant's subject. Every refusal has its control: the same
 * server accepts a real identity, the agent answers the auditor, the tenant's own verbs work all through the storm.
 */
import { AGENT_ENDPOINTS, agentSubject, PlaceReplySchema, tenantSubject } from '@allot/protocol';
import { connectOptionsFrom, requestTyped } from '@allot/nats';
import { connect, type ConnectionOptions } from '@nats-io/transport-node';
import type { Verdict } from './auditor.ts';
import { COORDINATORS, type ChaosCluster } from './topology.ts';

/** The server refused the publish (nats.js reports its -ERR): not a timeout, not a coordinator's or agent's answer. */
const deniedByServer = (message: string) => /Permissions Violation for Publish/i.test(message);

/** A reply (to a private inbox, `_INBOX_<key>.`) the server refused: one sent after a reconnect to another server. */
const isLateReply = (line: string) => /Permissions Violation for Publish to \\?"_INBOX_[A-Z0-9]+\./.test(line);

/** Connects with `options` to one server; the error message when refused, undefined when it got in. */
async function refused(options: ConnectionOptions): Promise<string | undefined> {
  try {
    const nc = await connect({ ...options, reconnect: false, maxReconnectAttempts: 0, timeout: 5_000, name: 'chaos-intruder' });
    await nc.close().catch(() => undefined);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** What the verdict needs of the cluster: its client URLs, the test's identities, the auditor's agent calls. */
export type SecuredTarget = Pick<ChaosCluster, 'clientUrls' | 'clientConfig' | 'agent' | 'tenant' | 'agents' | 'logs'>;

export async function auditSecured(c: SecuredTarget, prefix: string): Promise<Verdict> {
  const problems: string[] = [];
  const seen: string[] = [];
  const tenant = c.clientConfig('scheduler', 't0');
  for (const [i, url] of c.clientUrls.entries()) {
    const server = `n${i + 1} (${url})`;
    // The control: this server is up and takes a real identity.
    const reader = await connect({ ...(await options(c, url)), reconnect: false, timeout: 5_000 }).catch((e: unknown) => e as Error);
    if (reader instanceof Error) {
      problems.push(`${server}: the reader could not connect either (${reader.message}): nothing proven about this server`);
      continue;
    }
    await reader.close().catch(() => undefined);
    const attempts: [string, ConnectionOptions][] = [
      ['plain, no credentials', { servers: [url.replace(/^tls:/, 'nats:')] }],
      ['TLS with the CA, no certificate, no nkey', { servers: [url], tls: { caFile: tenant.tls?.caFile ?? '' } }],
      [
        "t0's client certificate, no nkey",
        {
          servers: [url],
          tls: { caFile: tenant.tls?.caFile ?? '', certFile: tenant.tls?.certFile ?? '', keyFile: tenant.tls?.keyFile ?? '' },
        },
      ],
    ];
    for (const [what, attempt] of attempts) {
      const why = await refused(attempt);
      if (why === undefined) problems.push(`${server} let in a client with ${what}`);
      else seen.push(why);
    }
  }

  // A tenant calling an agent directly (bypassing quotas and rate limits) and acting on another tenant's subject.
  const directId = `${prefix}-secured-direct`;
  const health = await c.agent('a1', 'health', {}, 5_000);
  if (!health.ok) problems.push(`a1 does not answer the auditor (${health.error.code}): the direct call proves nothing`);
  const direct = await requestTyped(
    c.tenant('t0'),
    agentSubject('a1', 'allocate'),
    { requestId: directId, tenantId: 't0', resources: { memoryMiB: 256, vcpus: 1 } },
    AGENT_ENDPOINTS.allocate.reply,
    { timeoutMs: 2_000 },
  );
  if (direct.ok) problems.push(`t0 allocated on a1 directly: ${direct.value.id}`);
  else if (!deniedByServer(direct.error.message))
    problems.push(
      `t0 -> allot.agent.a1.allocate was not refused by the server's permissions: ${direct.error.code}: ${direct.error.message}`,
    );
  const held = await c.agent('a1', 'allocations', { status: 'all', requestId: directId }, 5_000);
  if (!held.ok) problems.push(`a1's allocations for ${directId}: ${held.error.code}`);
  else if (held.value.allocations.length > 0) problems.push(`a1 holds ${held.value.allocations.length} allocation(s) of ${directId}`);
  const asOther = `${prefix}-secured-as-t1`;
  const crossed = await requestTyped(
    c.tenant('t0'),
    tenantSubject('t1', 'place'),
    { request: { requestId: asOther, tenantId: 't1', resources: { memoryMiB: 256, vcpus: 1 } } },
    PlaceReplySchema,
    { timeoutMs: 2_000 },
  );
  if (crossed.ok) problems.push(`t0 placed for t1 on allot.sched.t1.place: ${crossed.value.nodeId}`);
  else if (!deniedByServer(crossed.error.message))
    problems.push(
      `t0 -> allot.sched.t1.place was not refused by the server's permissions: ${crossed.error.code}: ${crossed.error.message}`,
    );

  // The other side: no agent or coordinator was itself denied anything (a right the generator forgot would show here).
  // Except a late reply: `allow_responses` lets a process answer a request only through the server that delivered it,
  // so a reply sent after its connection moved to another server (a killed server) is denied, and the client's retry
  // with the same request id gets the answer. Those are counted in the note.
  let denials = 0;
  let lateReplies = 0;
  for (const member of [...c.agents(), ...COORDINATORS]) {
    const lines = (await c.logs(member)).filter((line) => /Permissions Violation/i.test(line));
    const late = lines.filter(isLateReply);
    const denied = lines.filter((line) => !isLateReply(line));
    lateReplies += late.length;
    denials += denied.length;
    if (denied.length > 0) problems.push(`${member} was denied ${denied.length} time(s) by the server, e.g. ${denied[0]?.slice(0, 300)}`);
  }

  return {
    name: 'secured: no anonymous client, no tenant reaches an agent',
    ok: problems.length === 0,
    problems,
    note: `3 servers refused ${seen.length} of 9 intruders; ${denials} permission denials in the processes' logs (${lateReplies} late replies); t0 -> allot.agent.a1.allocate and allot.sched.t1.place: ${[direct, crossed].map((r) => (r.ok ? 'ok' : deniedByServer(r.error.message) ? 'permissions violation' : r.error.code)).join(', ')}`,
  };
}

/** The reader's nats.js options for one server (its nkey, certificate and reply inbox). */
async function options(c: SecuredTarget, url: string): Promise<ConnectionOptions> {
  const made = await connectOptionsFrom(c.clientConfig('reader', 'reader', [url]), 'chaos-secured-control');
  if (!made.ok) throw new Error(made.error.message);
  return made.value;
}
