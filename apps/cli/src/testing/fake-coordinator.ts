// A stand-in coordinator process for the cluster supervisor's tests: answers allot.sched.nodes with every node of
// FAKE_NODES as ready, and on SIGTERM appends `coordinator` to FAKE_STOP_ORDER_FILE. Not a coordinator.
import { appendFileSync, readFileSync } from 'node:fs';
import { ok } from '@allot/core';
import { serveFakeScheduler } from './fake-scheduler.ts';
import { sampleNode } from './samples.ts';

const configPath = process.argv[process.argv.indexOf('--config') + 1] ?? '';
const config = JSON.parse(readFileSync(configPath, 'utf8')) as { nats: { servers: string[] } };
const nodes = (process.env['FAKE_NODES'] ?? '').split(',').filter((n) => n !== '');
const fake = await serveFakeScheduler(config.nats.servers[0] ?? '', {
  nodes: () => ok({ nodes: nodes.map((n) => sampleNode(n, { lastSeen: Date.now() })) }),
});
console.log(JSON.stringify({ level: 30, msg: 'coordinator ready' }));
process.on('SIGTERM', () => {
  appendFileSync(process.env['FAKE_STOP_ORDER_FILE'] ?? '/dev/null', 'coordinator\n');
  void fake.stop().then(() => process.exit(0));
});
