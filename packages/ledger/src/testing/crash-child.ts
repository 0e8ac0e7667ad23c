/*
 * Crash-test child: opens the ledger in argv[2], checks what it found, then appends forever from `inFlight` concurrent
 * writers, printing each seq to stdout only after its append resolved (its acknowledgement). It compacts whenever the
 * ledger asks. The parent kill -9s it at random moments and checks that every printed seq survived.
 * Every record carries the seq it must get (n), every snapshot the seq it covers (upto): both are checked on reopen.
 */
import { openLedger } from '../ledger.ts';

const dir = process.argv[2];
const inFlight = Number(process.argv[3] ?? '16');
if (dir === undefined) throw new Error('usage: crash-child.ts <dir> [inFlight]');

const { ledger } = await openLedger<{ n: number; pad: string }, { upto: number }>(dir, { compactAfterRecords: 400 });
process.stdout.write(`open ${ledger.lastSeq}\n`);

function die(e: unknown): never {
  process.stderr.write(`crash-child failed: ${String(e)}\n`);
  process.exit(2);
}

async function writer(): Promise<void> {
  for (;;) {
    const n = ledger.lastSeq + 1;
    const seq = await ledger.append({ n, pad: 'x'.repeat(n % 97) });
    process.stdout.write(`${seq}\n`);
    if (ledger.shouldCompact()) ledger.compact({ upto: ledger.lastSeq }, ledger.lastSeq).catch(die);
  }
}

await Promise.all(Array.from({ length: inFlight }, () => writer())).catch(die);
