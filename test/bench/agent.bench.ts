// The agent over NATS, end to end: a real nats-server and the real agent process (durable ledger on a temp dir).
// `pnpm bench agent`. Prints figures; asserts nothing.
//   (a) bare NATS request/reply with an echo responder: sequential p50/p99, pipelined throughput (256 in flight)
//   (b) the agent: sequential allocate p50/p99 and its ratio to the bare p50 (goal <= 1.5x); pipelined
//       allocate+release pairs per second with 256 and 1024 in flight (goal >= 10,000 pairs/s)
//   (c) the agent's idle CPU: utime+stime from /proc/<pid>/stat over 10 s, sampled every second
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { nodeSegmentIo } from '@allot/ledger';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { AllocationSchema, type AllocationRequestInput } from '@allot/core';
import { agentSubject, decode, EVENTS_STREAM, encode, replySchema } from '@allot/protocol';
import { AsyncJetStreamPublisher, requestTyped } from '@allot/nats';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { inFlight, quantile } from '../harness/bench.ts';
import { cleanupAll, startAgent, startNatsServer, tempDir } from '../harness/index.ts';

const SEQUENTIAL = 2_000;
const WARMUP = 300;
const PIPELINED_REQUESTS = 40_000;
const PAIRS = 20_000;
/** No phase runs longer than this, whatever the count. */
const PHASE_CAP_MS = 60_000;
const NODE = 'bench-1';

function summary(latencies: number[]): { p50: number; p99: number; mean: number } {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), mean: sorted.reduce((s, x) => s + x, 0) / sorted.length };
}

/** Runs `op` `count` times, one at a time (bounded by PHASE_CAP_MS); returns each latency in ms. */
async function sequential(count: number, op: (i: number) => Promise<void>): Promise<number[]> {
  const latencies: number[] = [];
  const deadline = performance.now() + PHASE_CAP_MS;
  for (let i = 0; i < count && performance.now() < deadline; i++) {
    const t0 = performance.now();
    await op(i);
    latencies.push(performance.now() - t0);
  }
  return latencies;
}

/** Runs `op` `count` times with `window` at once (bounded by PHASE_CAP_MS); returns completions and elapsed ms. */
function pipelined(count: number, window: number, op: (i: number) => Promise<void>): Promise<{ done: number; ms: number }> {
  return inFlight(count, window, op, PHASE_CAP_MS);
}

function request(i: number, prefix: string): AllocationRequestInput {
  return { requestId: `${prefix}-${i}`, tenantId: 'bench', resources: { memoryMiB: 1_024, vcpus: 1 } };
}

let failures = 0;
function check(ok: boolean, what: string): void {
  if (!ok) {
    failures += 1;
    if (failures <= 5) console.error(`unexpected reply: ${what}`);
  }
}

/** CPU time (user + system) of a process so far, in ms, from /proc/<pid>/stat. */
function cpuMs(pid: number, ticksPerSecond: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at the last ')'; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / ticksPerSecond;
}

function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

const fmt = (n: number, digits = 3) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const rows: Array<[string, string, string, string]> = [];

async function main(): Promise<void> {
  const server = await startNatsServer({ jetstream: true });
  // As a scheduler would connect (and as the coordinator does): without nats.js' per-request stack captures, which
  // otherwise cost the client ~17% of its CPU, on the same two cores as the agent and the server.
  const nc: NatsConnection = await connect({ servers: server.url, noAsyncTraces: true });

  // ---------- (a) bare NATS request/reply ----------
  const responder = await connect({ servers: server.url, noAsyncTraces: true });
  responder.subscribe('bench.echo', { callback: (_err, msg) => void msg.respond(msg.data) });
  await responder.flush();
  const payload = encode(request(0, 'echo'));
  for (let i = 0; i < WARMUP; i++) await nc.request('bench.echo', payload, { timeout: 5_000 });
  const bare = summary(await sequential(SEQUENTIAL, async () => void (await nc.request('bench.echo', payload, { timeout: 5_000 }))));
  rows.push(['bare NATS echo, sequential', fmt(bare.p50), fmt(bare.p99), '']);
  const barePipe = await pipelined(
    PIPELINED_REQUESTS,
    256,
    async () => void (await nc.request('bench.echo', payload, { timeout: 10_000 })),
  );
  rows.push(['bare NATS echo, 256 in flight', '', '', `${Math.round((barePipe.done * 1000) / barePipe.ms)} req/s`]);
  await responder.close();
  const echoRate = (barePipe.done * 1000) / barePipe.ms;

  // ---------- (a2) JetStream publishes alone ----------
  // What the agent's audit trail costs the machine without the agent: event-sized messages with a dedupe id into a
  // file-backed stream (its own, so the event count below stays exact), 256 acks outstanding, as the agent publishes.
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: 'BENCH_JS',
    subjects: ['bench.js.>'],
    storage: StorageType.File,
    max_msgs: 100_000,
    duplicate_window: 120_000_000_000,
  });
  const publisher = new AsyncJetStreamPublisher(nc, { timeoutMs: 10_000 });
  const eventLike = {
    kind: 'allocated',
    nodeId: NODE,
    at: Date.now(),
    seq: 0,
    allocation: { id: `${NODE}:1`, request: request(0, 'js'), cpu: null },
  };
  const jsRun = await pipelined(PIPELINED_REQUESTS, 256, async (i) => {
    check((await publisher.publish('bench.js.allocated', eventLike, `js-${i}`)).ok, 'JetStream publish');
  });
  const jsRate = (jsRun.done * 1000) / jsRun.ms;
  rows.push(['JetStream publish (event-sized, msg id), 256 in flight', '', '', `${Math.round(jsRate)} msgs/s`]);
  publisher.close();
  await jsm.streams.delete('BENCH_JS');

  // ---------- (b) the agent ----------
  const stateDir = await tempDir('bench-agent');
  // One durable append as the ledger makes it (an O_DSYNC write on libuv's pool), on the disk the agent uses.
  const probe = await nodeSegmentIo.openSegment(join(stateDir, 'fsync-probe'), true);
  const record = Buffer.alloc(400, 1);
  let at = 0;
  const fsync = summary(
    await sequential(SEQUENTIAL, async () => {
      await probe.write(record, at);
      if (probe.durableWrites !== true) await probe.datasync();
      at += record.length;
    }),
  );
  await probe.close();
  await rm(join(stateDir, 'fsync-probe'));
  rows.push(['durable write of one record (ledger I/O), sequential', fmt(fsync.p50), fmt(fsync.p99), '']);
  const agent = await startAgent({
    natsUrl: server.url,
    nodeId: NODE,
    stateDir,
    host: { cores: 256, memoryMiB: 4 * 1024 * 1024, sockets: 2, numaNodes: 2 },
    memoryOvercommit: 2,
    cpuOvercommit: 8,
    // BENCH_AGENT_NODE_OPTIONS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles the agent (written at its graceful exit).
    ...(process.env['BENCH_AGENT_NODE_OPTIONS'] ? { env: { NODE_OPTIONS: process.env['BENCH_AGENT_NODE_OPTIONS'] } } : {}),
  });
  const allocate = agentSubject(NODE, 'allocate');
  const release = agentSubject(NODE, 'release');
  const typed = (subject: string, body: unknown) => requestTyped(nc, subject, body, AllocationSchema, { timeoutMs: 10_000 });

  for (let i = 0; i < WARMUP; i++) {
    const r = await typed(allocate, request(i, 'warm'));
    check(r.ok, 'warm-up allocate');
    check((await typed(release, { requestId: `warm-rel-${i}`, allocationRequestId: `warm-${i}` })).ok, 'warm-up release');
  }

  const releaseAll = async (prefix: string): Promise<void> => {
    await pipelined(SEQUENTIAL, 256, async (n) => {
      check(
        (await typed(release, { requestId: `${prefix}-rel-${n}`, allocationRequestId: `${prefix}-${n}` })).ok,
        `release ${prefix}-${n}`,
      );
    });
  };
  // With requestTyped, as every allot client calls (reply envelope validated by zod).
  const seqTyped = summary(
    await sequential(SEQUENTIAL, async (i) => {
      check((await typed(allocate, request(i, 'seq'))).ok, 'sequential allocate');
    }),
  );
  rows.push([
    'agent allocate, sequential (requestTyped)',
    fmt(seqTyped.p50),
    fmt(seqTyped.p99),
    `${fmt(seqTyped.p50 / bare.p50, 2)}x bare p50`,
  ]);
  await releaseAll('seq');
  // The same without the client's reply validation: what the wire and the agent cost alone.
  const replies: Uint8Array[] = [];
  const seqRaw = summary(
    await sequential(SEQUENTIAL, async (i) => {
      replies.push((await nc.request(allocate, encode(request(i, 'raw')), { timeout: 10_000 })).data);
    }),
  );
  for (const data of replies) {
    const envelope = decode(replySchema(AllocationSchema), data, Number.POSITIVE_INFINITY);
    check(envelope.ok && envelope.value.ok, 'raw allocate reply');
  }
  rows.push(['agent allocate, sequential (raw request)', fmt(seqRaw.p50), fmt(seqRaw.p99), `${fmt(seqRaw.p50 / bare.p50, 2)}x bare p50`]);
  await releaseAll('raw');

  let pairsDone = 0;
  for (const inFlight of [256, 1024]) {
    const run = await pipelined(PAIRS, inFlight, async (i) => {
      const id = `pair${inFlight}-${i}`;
      check((await typed(allocate, request(i, `pair${inFlight}`))).ok, 'pipelined allocate');
      check((await typed(release, { requestId: `${id}-rel`, allocationRequestId: id })).ok, 'pipelined release');
    });
    pairsDone += run.done;
    rows.push([
      `agent allocate+release, ${inFlight} in flight`,
      '',
      '',
      `${Math.round((run.done * 1000) / run.ms)} pairs/s (${run.done} pairs)`,
    ]);
  }

  // ---------- (c) idle CPU ----------
  await new Promise((resolve) => setTimeout(resolve, 5_000)); // let the last flush, compaction and GC settle
  const ticks = clockTicks();
  const samples: number[] = [cpuMs(agent.pid, ticks)];
  for (let i = 0; i < 10; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    samples.push(cpuMs(agent.pid, ticks));
  }
  const idleMs = (samples.at(-1) as number) - (samples[0] as number);
  const perSecond = samples.slice(1).map((s, i) => s - (samples[i] as number));

  console.log(`${'measure'.padEnd(44)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}  throughput / ratio`);
  for (const [name, p50, p99, extra] of rows) console.log(`${name.padEnd(44)} ${p50.padStart(8)} ${p99.padStart(8)}  ${extra}`);
  console.log(
    `\nratio agent allocate p50 / bare p50: ${fmt(seqTyped.p50 / bare.p50, 2)}x with requestTyped, ${fmt(seqRaw.p50 / bare.p50, 2)}x raw (goal <= 1.5x)`,
  );
  // A durable allocate is at least a round trip plus one fdatasync: the goal's 1.5x is below that floor when the
  // fdatasync alone takes more than half a round trip.
  console.log(
    `floor for a durable allocate (bare p50 + durable write p50): ${fmt(bare.p50 + fsync.p50)} ms = ${fmt((bare.p50 + fsync.p50) / bare.p50, 2)}x bare p50`,
  );
  // Every pair is two request/replies and two audit events, all on these two cores: even an agent doing nothing else
  // cannot exceed this, measured in the same run.
  const pairBound = 1 / (2 / echoRate + 2 / jsRate);
  console.log(
    `bound for pairs/s on this machine from the parts alone (2 echo round trips + 2 JetStream publishes per pair): ${Math.round(pairBound)} pairs/s (goal >= 10,000)`,
  );
  console.log(
    `agent idle CPU: ${fmt((idleMs * 60_000) / 10_000, 0)} ms per minute (${fmt(idleMs, 0)} ms over 10 s; per second: ${perSecond.map((x) => fmt(x, 0)).join(' ')})`,
  );
  // Every ledger record (allocated, released) should become one audit event; the agent publishes them one at a time
  // from a bounded outbox, so a shortfall here means events were dropped under load.
  const expectedEvents = 2 * (WARMUP + 2 * SEQUENTIAL + pairsDone) + 1;
  const stored = (await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM)).state.messages;
  console.log(
    `ALLOT_EVENTS holds ${stored} events after the run, of ${expectedEvents} records and starts (${expectedEvents - stored} missing)`,
  );
  if (failures > 0) console.log(`WARNING: ${failures} unexpected replies`);

  await agent.stop('SIGTERM');
  await nc.close();
}

try {
  await main();
} finally {
  await cleanupAll();
}
