import type { Command } from '../commands/command.ts';

/** What a shell can complete after `allot <command>`: its subcommands and its flags. */
export interface CompletionWords {
  readonly name: string;
  readonly summary: string;
  readonly subcommands: readonly string[];
  readonly flags: readonly string[];
}

/**
 * Read from each command's help text, the one place its words are written: the completion cannot drift from what the
 * command accepts. Subcommands are the words right after `allot <name>` on the usage lines; a command whose usage
 * says `<action>` lists its actions as indented lines instead (`allot security`).
 */
export function completionWords(command: Command): CompletionWords {
  const usage = new RegExp(`allot ${command.name} ([a-z][a-z0-9-]*)`, 'g');
  const subcommands = new Set<string>();
  for (const m of command.help.matchAll(usage)) subcommands.add(m[1] as string);
  if (subcommands.size === 0 && command.help.includes(`allot ${command.name} <action>`)) {
    for (const m of command.help.matchAll(/^ {2}([a-z][a-z0-9-]*) /gm)) subcommands.add(m[1] as string);
  }
  const flags = new Set<string>(['--help']);
  for (const m of command.help.matchAll(/(?<![\w-])(--[a-z][a-z0-9-]*)/g)) flags.add(m[1] as string);
  return { name: command.name, summary: command.summary, subcommands: [...subcommands].sort(), flags: [...flags].sort() };
}
