import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SCHED_ENDPOINTS, schedSubject } from '@allot/protocol';
import { requestTyped } from '@allot/nats';
import type { SpanLine } from '@allot/telemetry';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanupAll,
  COORDINATOR_MAIN,
  isLogMsg,
  registerCleanup,
  spawnProcess,
  startAgent,
  startNatsServer,
  tempDir,
  waitFor,
} from '../harness/index.ts';

/*
 * One `allot place` through the real CLI, with ALLOT_TRACE_FILE set for the CLI, the coordinator and the agent (each
 * its own file): the three files share one trace id and the agent's server span's parent chain leads, through the
 * coordinator's client span, to the CLI's root span `allot place`.
 */
const CLI_MAIN = fileURLToPath(new URL('../../apps/cli/src/main.ts', import.meta.url));

let dir: string;
let natsUrl: string;
let nc: NatsConnection;
const file = (name: string) => join(dir, `${name}.jsonl`);

beforeAll(async () => {
  dir = await tempDir('traces');
  const server = await startNatsServer();
  natsUrl = server.url;
  await startAgent({
    natsUrl,
    nodeId: 't1',
    stateDir: await tempDir('agent-t1'),
    env: { ALLOT_TRACE_FILE: file('agent'), ALLOT_HEARTBEAT_MS: '500' },
  });
  const config = join(dir, 'coordinator.json');
  await writeFile(config, JSON.stringify({ coordinatorId: 'c1', nats: { servers: [natsUrl] }, logLevel: 'info' }));
  const coordinator = spawnProcess({
    name: 'coordinator c1',
    script: COORDINATOR_MAIN,
    args: ['--config', config],
    env: { ALLOT_LOG_FORMAT: 'json', NODE_ENV: 'test', ALLOT_TRACE_FILE: file('coordinator') },
  });
  await coordinator.waitForLine(isLogMsg('coordinator ready'), 30_000);
  // A client without tracing (no SDK registered in the test process): its requests carry no traceparent.
  nc = await connect({ servers: natsUrl });
  registerCleanup('tracing test client', () => nc.close());
  await waitFor(
    async () => {
      const r = await requestTyped(nc, schedSubject('nodes'), {}, SCHED_ENDPOINTS.nodes.reply, { timeoutMs: 2_000 });
      return r.ok && r.value.nodes.some((n) => n.nodeId === 't1' && n.liveness === 'ready');
    },
    { timeoutMs: 30_000, message: 'node t1 ready in the coordinator view' },
  );
}, 120_000);

afterAll(async () => {
  await cleanupAll();
});

async function spans(name: string): Promise<SpanLine[]> {
  const text = await readFile(file(name), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as SpanLine);
}

describe('traces across processes', () => {
  it('the CLI, coordinator and agent span files share one trace, parented CLI -> coordinator -> agent', async () => {
    const cli = spawnProcess({
      name: 'allot place',
      script: CLI_MAIN,
      args: ['place', '-s', natsUrl, '--tenant', 'traced', '--memory', '512', '--vcpus', '1', '--request-id', 'traced-1', '--json'],
      env: { ALLOT_TRACE_FILE: file('cli') },
    });
    const exit = await cli.exited;
    expect(exit.code).toBe(0);

    const cliSpans = await spans('cli');
    const root = cliSpans.find((s) => s.name === 'allot place');
    expect(root, JSON.stringify(cliSpans)).toBeDefined();
    if (root === undefined) return;
    expect(root.parentSpanId).toBeUndefined();
    expect(root.service).toBe('allot-cli');
    const traceId = root.traceId;

    // The coordinator and the agent write their spans when the request ends: wait for them to reach the files.
    const all = await waitFor(
      async () => {
        const found = [...cliSpans, ...(await spans('coordinator')), ...(await spans('agent'))].filter((s) => s.traceId === traceId);
        const agentServer = found.find((s) => s.service === 'allot-agent' && s.kind === 'server' && s.name === 'allocate');
        return agentServer === undefined ? undefined : found;
      },
      { timeoutMs: 10_000, message: 'the agent allocate span of the trace' },
    );
    expect(new Set(all.map((s) => s.service))).toEqual(new Set(['allot-cli', 'allot-coordinator', 'allot-agent']));
    const byId = new Map(all.map((s) => [s.spanId, s]));
    const agentServer = all.find((s) => s.service === 'allot-agent' && s.kind === 'server' && s.name === 'allocate') as SpanLine;

    // Walk up from the agent's server span: agent server <- coordinator client <- coordinator server <- CLI client <- root.
    const chain: SpanLine[] = [agentServer];
    for (let s = agentServer; s.parentSpanId !== undefined;) {
      const parent = byId.get(s.parentSpanId);
      expect(parent, `parent ${s.parentSpanId} of ${s.service}/${s.name}`).toBeDefined();
      if (parent === undefined) break;
      chain.push(parent);
      s = parent;
    }
    const steps = chain.map((s) => `${s.service}:${s.kind}`);
    expect(steps).toEqual([
      'allot-agent:server',
      'allot-coordinator:client',
      'allot-coordinator:server',
      'allot-cli:client',
      'allot-cli:internal',
    ]);
    expect(chain[1]?.attributes['messaging.destination.name']).toBe('allot.agent.t1.allocate');
    expect(chain[2]?.name).toBe('place');
    expect(chain.at(-1)?.spanId).toBe(root.spanId);
  });

  it('a request from a client without tracing starts a new trace at the coordinator', async () => {
    const before = new Set((await spans('coordinator')).map((s) => s.traceId));
    const r = await requestTyped(nc, schedSubject('usage'), {}, SCHED_ENDPOINTS.usage.reply, { timeoutMs: 5_000 });
    expect(r.ok).toBe(true);
    const fresh = await waitFor(async () => (await spans('coordinator')).find((s) => s.name === 'usage' && !before.has(s.traceId)), {
      timeoutMs: 10_000,
    });
    expect(fresh.parentSpanId).toBeUndefined();
    expect(fresh.kind).toBe('server');
  });
});
