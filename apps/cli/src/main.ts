#!/usr/bin/env node
// allot: the operators' command line. Everything is in cli.ts; this file only wires the real process to it.
import { runCli } from './cli.ts';
import type { CliContext } from './context.ts';

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

const code = await runCli(process.argv.slice(2), ctx);
// Exit explicitly once stdout is flushed: a NATS socket still closing must not hold the process.
process.stdout.write('', () => process.exit(code));
