/*
 * Durable appends per second: sequential (one at a time) and pipelined (N in flight), with records per fsync and fsync
 * latency. Records are shaped like the agent's allocate/release records (~150 bytes of msgpack). Prints, never asserts.
 * The agent's goal: 10,000 durable allocate+release pairs per second = 20,000 records/s.
 */
import { openLedger } from '../src/index.ts';
import { tempDir } from '../src/testing/temp-dir.ts';

const DURATION_MS = Number(process.env.LEDGER_BENCH_MS ?? 2_000);

function record(i: number): Record<string, unknown> {
  return {
    kind: i % 2 === 0 ? 'allocate' : 'release',
    requestId: `req-${i.toString(36).padStart(8, '0')}`,
    allocationId: `alloc-${i}`,
    tenantId: 'tenant-a',
    memoryMiB: 4096,
    vcpus: 4,
    cores: [0, 1, 2, 3],
    at: 1_700_000_000_000 + i,
  };
}

async function run(inFlight: number): Promise<void> {
  const t = tempDir('allot-ledger-bench-');
  const { ledger } = await openLedger(t.dir, { compactAfterRecords: Number.MAX_SAFE_INTEGER, compactAfterBytes: Number.MAX_SAFE_INTEGER });
  let done = 0;
  const stopAt = performance.now() + DURATION_MS;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < stopAt) {
        await ledger.append(record(done));
        done += 1;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const s = ledger.stats();
  await ledger.close();
  t.remove();
  console.log(
    `in flight ${String(inFlight).padStart(4)}: ${Math.round(done / seconds)
      .toString()
      .padStart(7)} durable records/s` +
      ` | ${s.fsyncs} fsyncs, ${s.recordsPerFsync.toFixed(1)} records/fsync | fsync p50 ${s.fsyncLatencyMs.p50.toFixed(2)} ms` +
      ` p99 ${s.fsyncLatencyMs.p99.toFixed(2)} ms max ${s.fsyncLatencyMs.max.toFixed(2)} ms | ${(s.bytesOnDisk / done).toFixed(0)} bytes/record`,
  );
}

async function recovery(records: number): Promise<void> {
  const t = tempDir('allot-ledger-bench-');
  const { ledger } = await openLedger(t.dir, { compactAfterRecords: Number.MAX_SAFE_INTEGER, compactAfterBytes: Number.MAX_SAFE_INTEGER });
  for (let i = 0; i < records; i += 4096)
    await Promise.all(Array.from({ length: Math.min(4096, records - i) }, (_, j) => ledger.append(record(i + j))));
  const bytes = ledger.stats().bytesOnDisk;
  await ledger.close();
  const reopened = await openLedger(t.dir);
  console.log(
    `recovery: ${reopened.stats.recordsReplayed} records (${(bytes / 2 ** 20).toFixed(1)} MiB) replayed in ${reopened.stats.recoveryMs.toFixed(0)} ms`,
  );
  await reopened.ledger.close();
  t.remove();
}

async function compaction(): Promise<void> {
  const t = tempDir('allot-ledger-bench-');
  const { ledger } = await openLedger(t.dir, { compactAfterRecords: 10_000 });
  // A state the size of a busy host: 2,000 allocations.
  const state = { allocations: Array.from({ length: 2_000 }, (_, i) => record(i)) };
  let compactions = 0;
  let compactMs = 0;
  const started = performance.now();
  let done = 0;
  await Promise.all(
    Array.from({ length: 256 }, async () => {
      while (done < 100_000) {
        await ledger.append(record(done));
        done += 1;
        if (ledger.shouldCompact()) {
          const at = performance.now();
          compactions += 1;
          await ledger.compact(state);
          compactMs += performance.now() - at;
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const s = ledger.stats();
  await ledger.close();
  t.remove();
  console.log(
    `with compaction every 10,000 records (256 in flight, 2,000-allocation snapshot): ${Math.round(done / seconds)} durable records/s, ` +
      `${compactions} compactions averaging ${(compactMs / Math.max(1, compactions)).toFixed(1)} ms, ${(s.bytesOnDisk / 2 ** 20).toFixed(2)} MiB on disk at the end`,
  );
}

console.log(`ledger: ${DURATION_MS} ms per run, temp dir on the system temp filesystem`);
for (const inFlight of [1, 16, 256, 4096]) await run(inFlight);
await compaction();
await recovery(200_000);
