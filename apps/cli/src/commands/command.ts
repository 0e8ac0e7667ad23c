import type { CliContext } from '../context.ts';

/** One `allot <name>` command: its help, and what it does with its arguments, as an exit code. */
export interface Command {
  readonly name: string;
  /** One line for `allot --help`. */
  readonly summary: string;
  readonly help: string;
  run(args: string[], ctx: CliContext): Promise<number>;
}
