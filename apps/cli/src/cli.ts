import type { CliContext } from './context.ts';
import { EXIT } from './exit-codes.ts';
import type { Command } from './commands/command.ts';
import { nodesCommand } from './commands/nodes.ts';
import { checkCommand, placeCommand, releaseCommand } from './commands/placement.ts';
import { usageCommand } from './commands/usage.ts';

export const COMMANDS: readonly Command[] = [nodesCommand, usageCommand, placeCommand, releaseCommand, checkCommand];

export function topLevelHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: allot <command> [flags]',
    '',
    'Cluster-wide CPU and memory allocation for hypervisor hosts.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run 'allot <command> --help' for a command's flags. Every command takes --json and the NATS connection flags.",
    'Exit codes: 0 ok, 1 refused by allot, 2 usage error, 3 NATS or the coordinator cannot be reached.',
  ].join('\n');
}

/** Runs one command line and returns the process exit code. Never throws for anything a user can type. */
export async function runCli(argv: readonly string[], ctx: CliContext): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    ctx.out(topLevelHelp());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    ctx.err(`allot: unknown command "${name}"`);
    ctx.err("Run 'allot --help' for the list of commands.");
    return EXIT.usage;
  }
  return command.run(rest, ctx);
}
