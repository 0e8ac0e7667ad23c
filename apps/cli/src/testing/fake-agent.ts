// A stand-in agent process for the cluster supervisor's tests: logs the agent's ready line, and on SIGTERM appends its
// name to FAKE_STOP_ORDER_FILE and exits 0. FAKE_DIE=<nodeId> makes that agent exit 7 once ready. Not an agent.
import { appendFileSync, readFileSync } from 'node:fs';

const configPath = process.argv[process.argv.indexOf('--config') + 1] ?? '';
const { nodeId } = JSON.parse(readFileSync(configPath, 'utf8')) as { nodeId: string };
console.log(JSON.stringify({ level: 30, msg: 'agent ready', nodeId }));
if (process.env['FAKE_DIE'] === nodeId) {
  console.log(JSON.stringify({ level: 60, msg: 'fake agent dying on purpose', nodeId }));
  process.exit(7);
}
process.on('SIGTERM', () => {
  appendFileSync(process.env['FAKE_STOP_ORDER_FILE'] ?? '/dev/null', `${nodeId}\n`);
  process.exit(0);
});
setInterval(() => undefined, 1 << 30);
