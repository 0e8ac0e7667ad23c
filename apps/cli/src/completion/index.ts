import type { Command } from '../commands/command.ts';
import type { CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';
import { bashCompletion, zshCompletion } from './scripts.ts';
import { completionWords } from './words.ts';

export const COMPLETION_HELP = `Usage: allot completion bash|zsh

Prints a completion script for the shell: commands, their subcommands and their flags.
  bash   source <(allot completion bash), or save it as /etc/bash_completion.d/allot
  zsh    save it as _allot in a directory of $fpath (e.g. /usr/local/share/zsh/site-functions/_allot)`;

/** `allot completion <shell>`; given the command list by cli.ts (which owns it) so that this module imports no command. */
export function runCompletion(args: readonly string[], ctx: CliContext, commands: readonly Command[]): number {
  const [shell, ...extra] = args;
  if (shell === '--help' || shell === '-h') {
    ctx.out(COMPLETION_HELP);
    return EXIT.ok;
  }
  if ((shell !== 'bash' && shell !== 'zsh') || extra.length > 0) {
    ctx.err(`allot completion: ${shell === undefined ? 'name a shell' : `unknown shell ${JSON.stringify(shell)}`}: bash or zsh`);
    ctx.err(COMPLETION_HELP);
    return EXIT.usage;
  }
  const words = commands.map(completionWords);
  ctx.write(shell === 'bash' ? bashCompletion(words) : zshCompletion(words));
  return EXIT.ok;
}
