import type { z } from 'zod';
import { type AllotError, errorOf, type Result } from './errors.ts';

/* Validation of plain values (a decoded message, a config file, a CLI argument) against the schemas, as Results. */

/** Validates an already-decoded value (a config file, a CLI argument) the same way. */
export function validate<S extends z.ZodType>(schema: S, raw: unknown): Result<z.output<S>> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, error: zodToAllotError(parsed.error) };
}

/** `resources.memoryMiB: Too small: expected number to be >=0`, one line per issue, the first one leading. */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.length ? issue.path.map(String).join('.') : '(root)'}: ${issue.message}`);
}

export function zodToAllotError(error: z.ZodError): AllotError {
  const lines = formatIssues(error);
  return errorOf('invalid_request', lines.join('; '), {
    issues: error.issues.slice(0, 20).map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
  });
}
