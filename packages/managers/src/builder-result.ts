import { err, type ConfigProblem, type Result } from '@allot/core';

/** Zod issues as config problems under a path prefix. */
export function problemsOf(
  prefix: string,
  error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] },
): ConfigProblem[] {
  return error.issues.map((issue) => ({ path: [prefix, ...issue.path.map(String)].join('.'), message: issue.message }));
}

/** Every problem as one invalid_request naming each field; `details.issues` lists them for programs. */
export function invalidConfig<T>(problems: readonly ConfigProblem[]): Result<T> {
  return err('invalid_request', problems.map((p) => `${p.path}: ${p.message}`).join('; '), { issues: problems, field: problems[0]?.path });
}
