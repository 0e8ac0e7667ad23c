import { parseArgs } from 'node:util';
import { EXIT } from './exit-codes.ts';
import type { CliContext } from './context.ts';

/*
 * Flags are parsed with node:util parseArgs (no dependency): strict, so an unknown flag or a missing value is a usage
 * error, never silently ignored. This module turns its throws into values and checks the values' shapes.
 */

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

export function parsedOk<T>(value: T): Parsed<T> {
  return { ok: true, value };
}
export function usageProblem<T = never>(message: string): Parsed<T> {
  return { ok: false, message };
}

/** The flags every command takes. */
export const COMMON_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
} as const;

/** Runs parseArgs and returns its message instead of throwing (unknown flag, missing value, stray argument). */
export function tryParse<R>(parse: () => R): Parsed<R> {
  try {
    return parsedOk(parse());
  } catch (e) {
    return usageProblem(e instanceof Error ? e.message.replace(/\. To specify a positional argument.*$/s, '') : String(e));
  }
}

export { parseArgs };

/** Prints a usage error and returns exit code 2. */
export function usageError(ctx: CliContext, command: string, message: string): number {
  ctx.err(`allot ${command}: ${message}`);
  ctx.err(`Run 'allot ${command} --help' for usage.`);
  return EXIT.usage;
}

/** The positional arguments, exactly `names.length` of them. */
export function positionalsExactly(positionals: readonly string[], names: readonly string[]): Parsed<string[]> {
  if (positionals.length < names.length)
    return usageProblem(
      `missing ${names
        .slice(positionals.length)
        .map((n) => `<${n}>`)
        .join(' ')}`,
    );
  if (positionals.length > names.length) return usageProblem(`unexpected argument "${positionals[names.length] ?? ''}"`);
  return parsedOk([...positionals]);
}

/** A whole number within bounds, from a flag's text. */
export function parseInteger(flag: string, text: string, min: number, max: number): Parsed<number> {
  if (!/^\d+$/.test(text.trim())) return usageProblem(`--${flag}: "${text}" is not a whole number`);
  const n = Number(text.trim());
  if (n < min || n > max) return usageProblem(`--${flag}: ${n} is outside ${min}..${max}`);
  return parsedOk(n);
}
