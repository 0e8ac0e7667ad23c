import type { decode } from '@allot/protocol';

// zod is not a dependency of this package (the schemas come from callers, validation from @allot/core), so the zod
// types are named through core's decode() signature instead of imported.

/** A zod schema. */
export type Schema = Parameters<typeof decode>[0];

/** What a schema yields after parsing (z.output). */
export type Output<S extends Schema> = Extract<ReturnType<typeof decode<S>>, { ok: true }>['value'];
