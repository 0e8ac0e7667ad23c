#!/usr/bin/env node
// allot-agent: the authority over one hypervisor host. `node apps/agent/src/main.ts --config agent.json`
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Agent } from './agent.ts';
import { loadAgentConfig } from './config/index.ts';
import { createLogger } from './logger.ts';

const loaded = loadAgentConfig({ argv: process.argv.slice(2), env: process.env, readFile: (path) => readFileSync(path, 'utf8'), hostname: hostname() });
if (!loaded.ok) {
  // A bad value stops the agent with every problem named, never a stack trace.
  process.stderr.write(`${loaded.error.message}\n`);
  process.exit(2);
}
const config = loaded.value;
const log = createLogger({ level: config.logLevel, name: 'allot-agent', nodeId: config.nodeId });
const agent = new Agent(config, log);

let exiting = false;
async function shutdown(signal: string, code: number): Promise<void> {
  if (exiting) return;
  exiting = true;
  log.info({ signal }, 'stopping');
  const timer = setTimeout(() => {
    log.error({ graceMs: config.shutdownGraceMs }, 'shutdown grace exceeded; exiting');
    process.exit(1);
  }, config.shutdownGraceMs + 2_000);
  timer.unref();
  await agent.stop();
  process.exit(code);
}

agent.onFatal(() => void shutdown('ledger-failure', 1));
process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
process.on('SIGINT', () => void shutdown('SIGINT', 0));
// A bug must not leave a half-working authority behind: log it and exit non-zero; the ledger keeps what was acknowledged.
process.on('uncaughtException', (error) => {
  log.fatal({ err: error }, 'uncaught exception');
  void shutdown('uncaughtException', 1);
});
process.on('unhandledRejection', (error) => {
  log.fatal({ err: error }, 'unhandled rejection');
  void shutdown('unhandledRejection', 1);
});

const started = await agent.start();
if (!started.ok) {
  log.fatal({ err: started.error }, `agent could not start: ${started.error.message}`);
  await agent.stop().catch(() => undefined);
  process.exit(1);
}
