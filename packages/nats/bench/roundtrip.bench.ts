// Round trip over a local nats-server: a bare echo responder (raw bytes) against the same request through
// serveService + requestTyped (msgpack, zod on both sides, envelope, trace hooks with no SDK), so the plumbing's
// overhead is known. The agent's goal: sequential allocate p50 within 1.5x the bare round trip. Prints; never asserts.
import { AgentActivateRequestSchema } from '@allot/protocol';
import { ok } from '@allot/core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { inFlight, quantile } from '../../../test/harness/bench.ts';
import { cleanupAll, startNatsServer } from '../../../test/harness/index.ts';
import { silentLogger } from '../src/logger.ts';
import { requestTyped } from '../src/request.ts';
import { endpoint, serveService } from '../src/service.ts';

const SEQUENTIAL = 5_000;
const PIPELINED = 20_000;
const WINDOW = 256;
const request = { requestId: 'bench-request-0001', allocationId: 'alloc-0001' };

async function sequential(label: string, once: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 500; i++) await once(); // warm-up (JIT, connection buffers)
  const samples: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) {
    const t0 = performance.now();
    await once();
    samples.push(performance.now() - t0);
  }
  samples.sort((a, b) => a - b);
  const p50 = quantile(samples, 0.5);
  console.log(
    `${label}: sequential p50 ${(p50 * 1000).toFixed(0)} µs, p99 ${(quantile(samples, 0.99) * 1000).toFixed(0)} µs (${SEQUENTIAL} requests)`,
  );
  return p50;
}

async function pipelined(label: string, once: () => Promise<unknown>): Promise<void> {
  const { ms } = await inFlight(PIPELINED, WINDOW, once);
  const seconds = ms / 1000;
  console.log(`${label}: pipelined ${Math.round(PIPELINED / seconds)} req/s (${WINDOW} in flight, ${PIPELINED} requests)`);
}

async function main(): Promise<void> {
  const server = await startNatsServer({ jetstream: false });
  const serverSide: NatsConnection = await connect({ servers: server.url });
  const client: NatsConnection = await connect({ servers: server.url });

  serverSide.subscribe('bench.bare', { callback: (_e, m) => void m.respond(m.data) });
  const served = await serveService(serverSide, {
    name: 'allot-bench',
    version: '0.1.0',
    logger: silentLogger,
    endpoints: [endpoint({ name: 'echo', subject: 'bench.typed', requestSchema: AgentActivateRequestSchema, handler: async (r) => ok(r) })],
  });
  if (!served.ok) throw new Error(served.error.message);
  await serverSide.flush();

  const bareBytes = new TextEncoder().encode(JSON.stringify(request));
  const bare = () => client.request('bench.bare', bareBytes, { timeout: 5_000 });
  const typed = async () => {
    const r = await requestTyped(client, 'bench.typed', request, AgentActivateRequestSchema, { timeoutMs: 5_000 });
    if (!r.ok) throw new Error(r.error.message);
  };

  const bareP50 = await sequential('bare request/reply', bare);
  const typedP50 = await sequential('serveService + requestTyped', typed);
  console.log(`plumbing overhead at p50: ${(typedP50 / bareP50).toFixed(2)}x the bare round trip`);
  await pipelined('bare request/reply', bare);
  await pipelined('serveService + requestTyped', typed);

  await served.value.stop();
  await client.close();
  await serverSide.close();
  await cleanupAll();
}

await main();
