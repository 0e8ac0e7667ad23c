import type { AllotError } from '@allot/core';
import type { CliContext } from './context.ts';
import { exitCodeFor } from './exit-codes.ts';

/**
 * Prints an error reply and returns its exit code. Humans get the code, the message and every figure the reply
 * carries (requested, free, the limit crossed, retry-after); --json gets the error object on stdout.
 */
export function reportError(ctx: CliContext, command: string, error: AllotError, json: boolean): number {
  if (json) {
    ctx.out(JSON.stringify({ error }, null, 2));
  } else {
    ctx.err(`allot ${command}: ${error.code}: ${error.message}`);
    for (const line of figureLines(error.details ?? {})) ctx.err(`  ${line}`);
  }
  return exitCodeFor(error.code);
}

/** details as `key: value` lines; nested objects keep their path so a figure is never shown without its name. */
export function figureLines(details: Record<string, unknown>, prefix = ''): string[] {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(details)) {
    const name = prefix === '' ? key : `${prefix}.${key}`;
    if (value !== null && typeof value === 'object' && !Array.isArray(value))
      lines.push(...figureLines(value as Record<string, unknown>, name));
    else lines.push(`${name}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
  }
  return lines;
}
