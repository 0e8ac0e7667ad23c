// Placeholder until the coordinator issue lands: starts nothing but a nats-server so the command is real.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';

const command = process.argv[2];
if (command !== 'cluster') {
  console.error('usage: allot cluster');
  process.exit(2);
}
mkdirSync('.allot/nats', { recursive: true });
const nats = spawn('nats-server', ['-js', '-sd', '.allot/nats', '-p', '4222', '-a', '127.0.0.1'], { stdio: 'inherit' });
console.log('nats-server with JetStream on nats://127.0.0.1:4222. The agents and the coordinator are not built yet. Ctrl-C stops.');
process.on('SIGINT', () => nats.kill('SIGTERM'));
nats.on('exit', (code) => process.exit(code ?? 0));
