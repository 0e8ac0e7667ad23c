#!/usr/bin/env node
// allot: the operators' command line. Everything is in cli.ts; this file only wires the real process to it.
import { startTracing, withRootSpan } from '@allot/telemetry';
import { COMMANDS, runCli } from './cli.ts';
import type { CliContext } from './context.ts';

// With ALLOT_TRACE_FILE set, the command runs inside a root span (`allot place`): the trace starts at the client.
const tracing = await startTracing({ service: 'allot-cli' });

let stop: Promise<string> | undefined;
function stopRequested(): Promise<string> {
  stop ??= new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  return stop;
}

const ctx: CliContext = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  write: (text) => process.stdout.write(text),
  env: process.env,
  isTTY: process.stdout.isTTY === true,
  now: () => Date.now(),
  cwd: process.cwd(),
  stopRequested,
};

const argv = process.argv.slice(2);
const command = argv.find((a) => COMMANDS.some((c) => c.name === a));
const code =
  tracing.enabled && command !== undefined
    ? await withRootSpan(`allot ${command}`, { 'allot.command': command }, () => runCli(argv, ctx))
    : await runCli(argv, ctx);
await tracing.shutdown().catch(() => undefined);
// Exit explicitly once stdout is flushed: a NATS socket still closing must not hold the process.
process.stdout.write('', () => process.exit(code));
