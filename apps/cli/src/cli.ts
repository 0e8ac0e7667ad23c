import { ALLOT_VERSION } from '@allot/core';
import type { CliContext } from './context.ts';
import { EXIT } from './exit-codes.ts';
import type { Command } from './commands/command.ts';
import { nodesCommand } from './commands/nodes.ts';
import { clusterCommand } from './commands/cluster.ts';
import { activateCommand, checkCommand, placeCommand, releaseCommand } from './commands/placement.ts';
import { placeBatchCommand } from './commands/place-batch.ts';
import { resizeCommand } from './commands/resize.ts';
import { evacuateCommand, moveCommand } from './commands/move.ts';
import { usageCommand } from './commands/usage.ts';
import { cordonCommand, drainCommand, uncordonCommand } from './commands/node-admin.ts';
import { nodeCommand } from './commands/node.ts';
import { quotasCommand } from './commands/quotas.ts';
import { limitsCommand } from './commands/limits.ts';
import { allocationsCommand } from './commands/allocations.ts';
import { healthCommand } from './commands/health.ts';
import { eventsCommand } from './commands/events.ts';
import { watchCommand } from './commands/watch.ts';
import { auditCommand } from './commands/audit.ts';
import { securityCommand } from './commands/security.ts';
import { CONNECTION_OPTIONS } from './connection.ts';
import { runCompletion } from './completion/index.ts';

export const COMMANDS: readonly Command[] = [
  nodesCommand,
  usageCommand,
  placeCommand,
  placeBatchCommand,
  releaseCommand,
  activateCommand,
  resizeCommand,
  moveCommand,
  checkCommand,
  quotasCommand,
  cordonCommand,
  uncordonCommand,
  drainCommand,
  evacuateCommand,
  nodeCommand,
  limitsCommand,
  allocationsCommand,
  healthCommand,
  auditCommand,
  eventsCommand,
  watchCommand,
  clusterCommand,
  securityCommand,
];

export function topLevelHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: allot <command> [flags]',
    '',
    'Cluster-wide CPU and memory allocation for hypervisor hosts.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    `  ${'completion'.padEnd(width)}  a bash or zsh completion script`,
    '',
    "Run 'allot <command> --help' for a command's flags. Every command takes --json and the NATS connection flags. 'allot --version' prints the release.",
    'Exit codes: 0 ok, 1 refused by allot, 2 usage error, 3 NATS or the coordinator cannot be reached.',
  ].join('\n');
}

/** Runs one command line and returns the process exit code. Never throws for anything a user can type. */
export async function runCli(argv: readonly string[], ctx: CliContext): Promise<number> {
  const { leading, command: name, rest } = splitLeadingFlags(argv);
  if (leading.length > 0 && name !== undefined) return runCli([name, ...rest, ...leading], ctx);
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    ctx.out(topLevelHelp());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === 'completion') return runCompletion(rest, ctx, COMMANDS);
  if (name === '--version' || name === 'version') {
    ctx.out(`allot ${ALLOT_VERSION} (node ${process.version})`);
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    ctx.err(`allot: unknown command "${name}"`);
    ctx.err("Run 'allot --help' for the list of commands.");
    return EXIT.usage;
  }
  return command.run(rest, ctx);
}

const VALUE_FLAGS = new Set(
  Object.entries(CONNECTION_OPTIONS).flatMap(([name, o]) => ['--' + name, ...('short' in o ? ['-' + o.short] : [])]),
);

/**
 * `allot -s nats://h:4222 nodes` reads as naturally as `allot nodes -s ...`: connection flags and --json given before
 * the command are moved after it. Anything else before the command is left where it is, to be refused.
 */
function splitLeadingFlags(argv: readonly string[]): { leading: string[]; command: string | undefined; rest: string[] } {
  const leading: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i] ?? '';
    const bare = arg.split('=')[0] ?? '';
    if (VALUE_FLAGS.has(bare)) {
      const takesNext = !arg.includes('=') && i + 1 < argv.length;
      leading.push(...argv.slice(i, takesNext ? i + 2 : i + 1));
      i += takesNext ? 2 : 1;
    } else if (arg === '--json') {
      leading.push(arg);
      i += 1;
    } else break;
  }
  return { leading, command: argv[i], rest: argv.slice(i + 1) };
}
